"""The OBIE spec helper (tests/support/obie_spec.py) can fail as well as pass: hand-written
traffic, built from the vendored v3.1.11 documents, passes when it follows them and raises
SpecViolation, naming the operation and the JSON path, when one thing is broken. The
vendored documents are the unchanged copies the README lists."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

import pytest
from tests.support import obie_spec
from tests.support.obie_spec import SpecViolation, validate_request, validate_response
from tests.support.paths import REPO

INTERACTION = {"x-fapi-interaction-id": "93bac548-d2de-4546-b106-880a5018460d"}
REQUEST_HEADERS = {"Authorization": "Bearer at_1", "Content-Type": "application/json"}
AT = "2024-05-01T09:30:00+05:00"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _consent_response() -> dict[str, Any]:
    """An OBReadConsentResponse1, as POST /account-access-consents answers 201."""
    return {
        "Data": {
            "ConsentId": "cns_01HXAMPLE",
            "CreationDateTime": AT,
            "Status": "AwaitingAuthorisation",
            "StatusUpdateDateTime": "2024-05-01T04:30:00Z",
            "Permissions": ["ReadAccountsDetail", "ReadBalances"],
            "ExpirationDateTime": "2024-08-01T00:00:00.000+00:00",
        },
        "Risk": {},
        "Links": {"Self": "https://api.amanat.example/open-banking/v3.1/aisp/x"},
        "Meta": {"TotalPages": 1},
    }


def _consent_request() -> dict[str, Any]:
    """An OBReadConsent1, the body of POST /account-access-consents."""
    return {
        "Data": {"Permissions": ["ReadAccountsBasic"], "ExpirationDateTime": AT},
        "Risk": {},
    }


def _create_consent(body: dict[str, Any], headers: dict[str, str] = INTERACTION) -> str:
    return validate_response(
        "accounts", "POST", "/account-access-consents", 201, headers, _json(body)
    )


# -- the vendored documents -----------------------------------------------------------------


def test_the_vendored_specs_are_the_unchanged_copies_the_readme_lists() -> None:
    readme = (obie_spec.SPEC_DIR / "README.md").read_text()
    listed = {
        name: digest
        for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.MULTILINE)
    }
    assert set(listed) == set(obie_spec.SPEC_FILES.values())
    for name, digest in listed.items():
        assert hashlib.sha256((obie_spec.SPEC_DIR / name).read_bytes()).hexdigest() == digest
    assert obie_spec.SPEC_DIR.is_relative_to(REPO)


# -- responses ------------------------------------------------------------------------------


def test_a_valid_consent_response_passes_and_names_its_operation() -> None:
    assert _create_consent(_consent_response()) == "CreateAccountAccessConsents"


def _without_consent_id(body: dict[str, Any]) -> None:
    del body["Data"]["ConsentId"]


def _unknown_status(body: dict[str, Any]) -> None:
    body["Data"]["Status"] = "Pending"


def _no_timezone(body: dict[str, Any]) -> None:
    body["Data"]["CreationDateTime"] = "2024-05-01T09:30:00"


def _not_a_date(body: dict[str, Any]) -> None:
    body["Data"]["StatusUpdateDateTime"] = "01/05/2024 09:30"


def _unknown_permission(body: dict[str, Any]) -> None:
    body["Data"]["Permissions"].append("ReadEverything")


def _no_permissions(body: dict[str, Any]) -> None:
    body["Data"]["Permissions"] = []


def _extra_field(body: dict[str, Any]) -> None:
    body["Data"]["Scope"] = "accounts"  # Data does not say additionalProperties: false


def _risk_not_empty(body: dict[str, Any]) -> None:
    body["Risk"]["PaymentContextCode"] = "Other"  # OBRisk2 is an empty, closed object


def _overlong_id(body: dict[str, Any]) -> None:
    body["Data"]["ConsentId"] = "c" * 129


def _relative_self_link(body: dict[str, Any]) -> None:
    body["Links"]["Self"] = "/open-banking/v3.1/aisp/x"


@pytest.mark.parametrize(
    ("break_it", "json_path", "reason"),
    [
        (_without_consent_id, "$.Data", '"ConsentId" is a required property'),
        (_unknown_status, "$.Data.Status", "is not one of"),
        (_no_timezone, "$.Data.CreationDateTime", 'is not a "date-time"'),
        (_not_a_date, "$.Data.StatusUpdateDateTime", 'is not a "date-time"'),
        (_unknown_permission, "$.Data.Permissions[2]", "is not one of"),
        (_no_permissions, "$.Data.Permissions", "[] has less than 1 item"),
        (_risk_not_empty, "$.Risk", "Additional properties are not allowed"),
        (_overlong_id, "$.Data.ConsentId", "is longer than 128 characters"),
        (_relative_self_link, "$.Links.Self", 'is not a "uri"'),
    ],
)
def test_a_broken_consent_response_names_the_operation_path_and_reason(
    break_it: Any, json_path: str, reason: str
) -> None:
    body = _consent_response()
    break_it(body)
    with pytest.raises(SpecViolation) as raised:
        _create_consent(body)
    message = str(raised.value)
    assert "POST /account-access-consents (CreateAccountAccessConsents)" in message
    assert "response 201" in message
    assert f"{json_path}: " in message
    assert reason in message
    assert raised.value.problems and raised.value.operation


def test_what_the_spec_leaves_open_is_not_a_violation() -> None:
    body = _consent_response()
    _extra_field(body)
    del body["Links"], body["Meta"]  # never `required` in the 3.1.11 documents
    assert _create_consent(body) == "CreateAccountAccessConsents"


def test_every_problem_is_reported_at_once() -> None:
    body = _consent_response()
    _without_consent_id(body)
    _unknown_status(body)
    with pytest.raises(SpecViolation) as raised:
        _create_consent(body, headers={})
    assert len(raised.value.problems) == 3
    assert "header x-fapi-interaction-id: required by the spec, missing" in str(raised.value)


def test_a_missing_interaction_id_header_fails() -> None:
    with pytest.raises(SpecViolation, match="header x-fapi-interaction-id: required"):
        _create_consent(_consent_response(), headers={"content-type": "application/json"})


def test_response_header_names_compare_without_case() -> None:
    headers = {"X-FAPI-Interaction-ID": INTERACTION["x-fapi-interaction-id"]}
    assert _create_consent(_consent_response(), headers=headers)


def test_an_unknown_path_fails() -> None:
    with pytest.raises(SpecViolation, match=r"no path of account-info-openapi\.yaml matches"):
        validate_response("accounts", "GET", "/consents/cns_1", 200, INTERACTION, b"{}")


def test_an_undeclared_method_fails() -> None:
    with pytest.raises(SpecViolation, match="has no PUT operation"):
        validate_response("accounts", "PUT", "/account-access-consents", 200, INTERACTION, b"")


def test_an_undeclared_status_fails() -> None:
    with pytest.raises(SpecViolation, match="status 200 is not documented") as raised:
        validate_response(
            "accounts",
            "POST",
            "/account-access-consents",
            200,
            INTERACTION,
            _json(_consent_response()),
        )
    assert "201, 400, 401" in str(raised.value)


def test_a_valid_error_response_passes() -> None:
    error = {
        "Code": "400 BadRequest",
        "Id": "err_01HXAMPLE",
        "Message": "The consent request is invalid",
        "Errors": [
            {
                "ErrorCode": "UK.OBIE.Field.Missing",
                "Message": "Data.Permissions is required",
                "Path": "Data.Permissions",
            }
        ],
    }
    headers = {**INTERACTION, "Content-Type": "application/json; charset=utf-8"}
    operation = validate_response(
        "accounts", "post", "/account-access-consents", 400, headers, _json(error)
    )
    assert operation == "CreateAccountAccessConsents"

    error["Errors"] = []
    with pytest.raises(SpecViolation, match=r"\$\.Errors: \[\] has less than 1 item"):
        validate_response(
            "accounts", "POST", "/account-access-consents", 400, headers, _json(error)
        )


def test_a_declared_body_must_be_json_and_present() -> None:
    with pytest.raises(SpecViolation, match="body is empty"):
        validate_response("accounts", "POST", "/account-access-consents", 201, INTERACTION, b"")
    with pytest.raises(SpecViolation, match="not JSON"):
        validate_response("accounts", "POST", "/account-access-consents", 201, INTERACTION, b"<")


def test_the_content_type_must_be_declared_and_only_json_is_read() -> None:
    body = _json(_consent_response())
    with pytest.raises(SpecViolation, match="Content-Type 'application/problem\\+json'"):
        _create_consent(
            _consent_response(),
            headers={**INTERACTION, "Content-Type": "application/problem+json"},
        )
    # Declared, but an encrypted JWE: nothing of it can be checked here.
    jwe = {**INTERACTION, "Content-Type": "application/jose+jwe"}
    assert validate_response("accounts", "POST", "/account-access-consents", 201, jwe, b"e.y.J")
    assert validate_response("accounts", "POST", "/account-access-consents", 201, jwe, body)


def test_a_bodiless_delete_passes() -> None:
    operation = validate_response(
        "accounts", "DELETE", "/account-access-consents/cns_1", 204, INTERACTION, b""
    )
    assert operation == "DeleteAccountAccessConsentsConsentId"


# -- finding the operation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/accounts/abc/balances", "GetAccountsAccountIdBalances"),
        ("/balances", "GetBalances"),
        ("/accounts", "GetAccounts"),
        ("/accounts/abc", "GetAccountsAccountId"),
        (
            "/accounts/abc/statements/st_1/transactions",
            "GetAccountsAccountIdStatementsStatementIdTransactions",
        ),
        ("/open-banking/v3.1/aisp/accounts/abc/balances", "GetAccountsAccountIdBalances"),
        ("/accounts/abc/balances?page=2", "GetAccountsAccountIdBalances"),
    ],
)
def test_a_concrete_path_finds_its_templated_path(path: str, operation: str) -> None:
    assert validate_response("accounts", "GET", path, 401, INTERACTION, b"") == operation


def test_a_literal_segment_beats_a_template() -> None:
    routes = [
        obie_spec._Route("/a/{Id}/c", ("a", "{Id}", "c"), {}),
        obie_spec._Route("/a/b/{Id}", ("a", "b", "{Id}"), {}),
        obie_spec._Route("/a/{Id}/{Other}", ("a", "{Id}", "{Other}"), {}),
    ]
    assert obie_spec._match(routes, ["a", "b", "c"]).template == "/a/b/{Id}"
    assert obie_spec._match(routes, ["a", "x", "c"]).template == "/a/{Id}/c"
    assert obie_spec._match(routes, ["a", "x", "y"]).template == "/a/{Id}/{Other}"
    assert obie_spec._match(routes, ["a", "x"]) is None
    assert obie_spec._match(routes, ["a", "", "c"]) is None


def test_the_funds_api_finds_its_consent_read() -> None:
    consent = {
        "Data": {
            "ConsentId": "cns_01HXAMPLE",
            "CreationDateTime": AT,
            "Status": "Authorised",
            "StatusUpdateDateTime": AT,
            "DebtorAccount": {
                "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": "08080021325698",
            },
        },
        "Links": {"Self": "https://api.amanat.example/open-banking/v3.1/cbpii/x"},
        "Meta": {},
    }
    operation = validate_response(
        "funds",
        "get",
        "/funds-confirmation-consents/cns_01HXAMPLE",
        200,
        INTERACTION,
        _json(consent),
    )
    assert operation == "GetFundsConfirmationConsentsConsentId"


def test_an_unknown_api_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown api 'cards'"):
        validate_response("cards", "GET", "/cards", 200, {}, b"")


# -- requests -------------------------------------------------------------------------------


def test_a_valid_consent_request_passes() -> None:
    headers = {"authorization": "Bearer at_1", "content-type": "application/json; charset=utf-8"}
    operation = validate_request(
        "accounts", "POST", "/account-access-consents", headers, _json(_consent_request())
    )
    assert operation == "CreateAccountAccessConsents"


def test_a_consent_request_without_permissions_fails() -> None:
    body = _consent_request()
    del body["Data"]["Permissions"]
    with pytest.raises(SpecViolation) as raised:
        validate_request(
            "accounts", "POST", "/account-access-consents", REQUEST_HEADERS, _json(body)
        )
    assert "request" in str(raised.value)
    assert '$.Data: "Permissions" is a required property' in str(raised.value)


def test_a_request_needs_its_required_headers_and_body() -> None:
    body = _json(_consent_request())
    with pytest.raises(SpecViolation, match="header Authorization: required by the spec"):
        validate_request("accounts", "POST", "/account-access-consents", {}, body)
    with pytest.raises(SpecViolation, match="body is empty"):
        validate_request("accounts", "POST", "/account-access-consents", REQUEST_HEADERS, None)
    with pytest.raises(SpecViolation, match="declares no request body"):
        validate_request("accounts", "GET", "/accounts", REQUEST_HEADERS, body)
    assert validate_request("accounts", "GET", "/accounts", REQUEST_HEADERS, None) == "GetAccounts"


def test_a_declared_header_value_must_follow_its_schema() -> None:
    headers = {**REQUEST_HEADERS, "x-fapi-auth-date": "2024-05-01T09:30:00Z"}
    with pytest.raises(SpecViolation, match=r"header x-fapi-auth-date: .* does not match"):
        validate_request(
            "accounts", "POST", "/account-access-consents", headers, _json(_consent_request())
        )
    headers["x-fapi-auth-date"] = "Wed, 01 May 2024 04:30:00 GMT"
    assert validate_request(
        "accounts", "POST", "/account-access-consents", headers, _json(_consent_request())
    )


def _domestic_consent() -> dict[str, Any]:
    """An OBWriteDomesticConsent4, the body of POST /domestic-payment-consents."""
    return {
        "Data": {
            "Initiation": {
                "InstructionIdentification": "instr-0001",
                "EndToEndIdentification": "e2e-0001",
                "InstructedAmount": {"Amount": "1250.50", "Currency": "GBP"},
                "CreditorAccount": {
                    "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                    "Identification": "08080021325698",
                    "Name": "ACME Inc",
                },
            }
        },
        "Risk": {"PaymentContextCode": "EcommerceGoods"},
    }


def test_a_payment_consent_request_needs_idempotency_and_signature_headers() -> None:
    body = _json(_domestic_consent())
    with pytest.raises(SpecViolation) as raised:
        validate_request("payments", "POST", "/domestic-payment-consents", REQUEST_HEADERS, body)
    assert "header x-idempotency-key: required" in str(raised.value)
    assert "header x-jws-signature: required" in str(raised.value)

    signed = {**REQUEST_HEADERS, "x-idempotency-key": "idem-1", "x-jws-signature": "e..s"}
    operation = validate_request("payments", "POST", "/domestic-payment-consents", signed, body)
    assert operation == "CreateDomesticPaymentConsents"

    with pytest.raises(SpecViolation, match=r"header x-idempotency-key: .* longer than 40"):
        validate_request(
            "payments",
            "POST",
            "/domestic-payment-consents",
            {**signed, "x-idempotency-key": "k" * 41},
            body,
        )

    amount = copy.deepcopy(_domestic_consent())
    amount["Data"]["Initiation"]["InstructedAmount"]["Amount"] = "12.345678"
    with pytest.raises(SpecViolation, match=r"\$\.Data\.Initiation\.InstructedAmount\.Amount: "):
        validate_request("payments", "POST", "/domestic-payment-consents", signed, _json(amount))


def test_a_funds_request_may_name_a_charset_the_spec_leaves_out() -> None:
    # The funds document declares only "application/json" for its request bodies.
    body = {
        "Data": {
            "DebtorAccount": {
                "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": "08080021325698",
            }
        }
    }
    headers = {**REQUEST_HEADERS, "Content-Type": "application/json; charset=utf-8"}
    operation = validate_request(
        "funds", "POST", "/funds-confirmation-consents", headers, _json(body)
    )
    assert operation == "CreateFundsConfirmationConsents"


def test_a_429_needs_no_interaction_id_and_an_integer_retry_after() -> None:
    # The one response whose x-fapi-interaction-id the documents leave optional.
    assert validate_response("accounts", "GET", "/accounts", 429, {"Retry-After": "30"}, b"")
    with pytest.raises(SpecViolation, match='header Retry-After: "soon" is not of type "integer"'):
        validate_response("accounts", "GET", "/accounts", 429, {"Retry-After": "soon"}, b"")


# -- what the OBIE documents do not use, but OpenAPI 3.0 has --------------------------------


def test_nullable_becomes_a_null_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "Note": {"type": "string", "nullable": True, "enum": ["a"]},
            "Items": {"type": "array", "items": {"$ref": "#/components/schemas/X"}},
            "Any": {"nullable": True, "minLength": 1},
        },
    }
    converted = obie_spec._to_json_schema(schema, ref_base="urn:x")
    assert converted["properties"]["Note"] == {"type": ["string", "null"], "enum": ["a", None]}
    assert converted["properties"]["Items"]["items"] == {"$ref": "urn:x#/components/schemas/X"}
    assert converted["properties"]["Any"] == {"anyOf": [{"minLength": 1}, {"type": "null"}]}
    assert schema["properties"]["Note"]["nullable"] is True  # the document is left alone


def test_an_undocumented_status_falls_back_to_default() -> None:
    document = {
        "paths": {"/x": {"get": {"responses": {"200": {}, "default": {"$ref": "#/c/E"}}}}},
        "c": {"E": {"description": "any error"}},
    }
    spec = obie_spec._Spec("test", document, "", ())
    operation = obie_spec._Operation(
        spec,
        "GET",
        "/x",
        document["paths"]["/x"],
        document["paths"]["/x"]["get"],
        ("paths", "/x", "get"),
    )
    assert operation.response(200).pointer == ("paths", "/x", "get", "responses", "200")
    assert operation.response(503).pointer == ("c", "E")


def test_a_payment_error_response_needs_a_signature_header() -> None:
    error = {
        "Code": "400 BadRequest",
        "Message": "Bad consent",
        "Errors": [{"ErrorCode": "UK.OBIE.Field.Invalid", "Message": "Amount is invalid"}],
    }
    with pytest.raises(SpecViolation, match="header x-jws-signature: required"):
        validate_response(
            "payments", "POST", "/domestic-payment-consents", 400, INTERACTION, _json(error)
        )
    signed = {**INTERACTION, "x-jws-signature": "e..s"}
    assert validate_response(
        "payments", "POST", "/domestic-payment-consents", 400, signed, _json(error)
    )


def test_a_trailing_slash_is_another_path() -> None:
    with pytest.raises(SpecViolation, match="no path"):
        validate_response("accounts", "GET", "/accounts/", 401, INTERACTION, b"")
