"""Access rules: partner roles → scopes (no wildcards), operator roles → permissions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.identity.access import (
    CONSENT_SCOPES,
    OPT_IN_SCOPES,
    ROLE_PERMISSIONS,
    ROLE_SCOPES,
    SCOPE_DESCRIPTIONS,
    OperatorRole,
    PartnerRole,
    Permission,
    grantable_scopes,
    parse_operator_roles,
    parse_roles,
    parse_scope_string,
    permissions_for,
    scopes_for_roles,
)
from amanat.kernel.errors import InvalidInput

ALL_SCOPES = sorted(SCOPE_DESCRIPTIONS)


def test_no_wildcard_or_all_access_scope_exists() -> None:
    for scope in SCOPE_DESCRIPTIONS:
        assert "*" not in scope
        assert scope.strip() == scope
        assert " " not in scope
        assert scope not in {"all", "admin", "root", "full", "openid"}
        assert not scope.endswith(":admin")
        assert SCOPE_DESCRIPTIONS[scope]


def test_every_role_has_scopes_and_every_scope_a_role() -> None:
    assert set(ROLE_SCOPES) == set(PartnerRole)
    granted = set().union(*ROLE_SCOPES.values())
    assert granted == set(SCOPE_DESCRIPTIONS)


def test_merchant_scopes() -> None:
    assert ROLE_SCOPES[PartnerRole.MERCHANT] == {
        "payments:read",
        "payments:write",
        "refunds:write",
        "disputes:read",
        "disputes:write",
        "webhooks:manage",
        "events:read",
        "settlements:read",
        "balance:read",
        "customers:reveal",
        "payees:check",
    }
    assert not ROLE_SCOPES[PartnerRole.MERCHANT] & CONSENT_SCOPES


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        (PartnerRole.AISP, "accounts"),
        (PartnerRole.PISP, "payments"),
        (PartnerRole.CBPII, "fundsconfirmations"),
    ],
)
def test_open_banking_roles_have_exactly_their_consent_scope(role: PartnerRole, scope: str) -> None:
    assert ROLE_SCOPES[role] & CONSENT_SCOPES == {scope}
    assert scope in CONSENT_SCOPES
    # Besides it: hearing of its consents by webhook, and (a PISP) checking payees.
    assert ROLE_SCOPES[role] - {scope} <= {"payees:check", "webhooks:manage", "events:read"}


def test_consent_scopes_belong_to_open_banking_roles_only() -> None:
    tpp = scopes_for_roles([PartnerRole.AISP, PartnerRole.PISP, PartnerRole.CBPII])
    assert tpp == CONSENT_SCOPES | {"payees:check", "webhooks:manage", "events:read"}


def test_scopes_for_roles_is_the_union() -> None:
    both = scopes_for_roles([PartnerRole.MERCHANT, PartnerRole.AISP])
    assert both == ROLE_SCOPES[PartnerRole.MERCHANT] | {"accounts"}
    assert scopes_for_roles([]) == frozenset()


def test_parse_roles() -> None:
    assert parse_roles(["aisp", "pisp", "aisp"]) == {PartnerRole.AISP, PartnerRole.PISP}
    with pytest.raises(InvalidInput) as caught:
        parse_roles(["admin"])
    assert caught.value.code == "invalid_role"
    with pytest.raises(InvalidInput):
        parse_roles([])


def test_parse_scope_string() -> None:
    assert parse_scope_string(None) == []
    assert parse_scope_string("") == []
    assert parse_scope_string("  ") == []
    assert parse_scope_string("b a  b") == ["b", "a"]


def test_grantable_empty_request_grants_everything_allowed_sorted() -> None:
    allowed = frozenset({"payments:write", "balance:read"})
    assert grantable_scopes([], allowed) == ["balance:read", "payments:write"]
    assert grantable_scopes([], frozenset()) == []


def test_grantable_keeps_the_requested_order() -> None:
    allowed = ROLE_SCOPES[PartnerRole.MERCHANT]
    assert grantable_scopes(["refunds:write", "balance:read"], allowed) == [
        "refunds:write",
        "balance:read",
    ]


def test_grantable_refuses_a_scope_not_allowed() -> None:
    with pytest.raises(InvalidInput) as caught:
        grantable_scopes(["accounts"], ROLE_SCOPES[PartnerRole.MERCHANT])
    assert caught.value.code == "invalid_scope"


@pytest.mark.parametrize("scope", ["*", "payments:*", "unknown", "Payments:read", ""])
def test_grantable_refuses_an_unknown_scope(scope: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        grantable_scopes([scope], frozenset(SCOPE_DESCRIPTIONS))
    assert caught.value.code == "invalid_scope"


def test_grantable_refuses_the_whole_request_if_one_scope_is_bad() -> None:
    with pytest.raises(InvalidInput):
        grantable_scopes(["balance:read", "accounts"], ROLE_SCOPES[PartnerRole.MERCHANT])


def test_every_operator_role_has_permissions_from_the_enum() -> None:
    assert set(ROLE_PERMISSIONS) == set(OperatorRole)
    for role, permissions in ROLE_PERMISSIONS.items():
        assert permissions, role
        assert permissions <= set(Permission), role


def test_least_privilege_for_read_only_roles() -> None:
    # Revealing personal data changes nothing either (it is a read, audited with a reason).
    reads = {p for p in Permission if p.value.endswith(".read")} | {Permission.PERSONAL_DATA_REVEAL}
    writes = set(Permission) - reads
    assert not ROLE_PERMISSIONS[OperatorRole.SUPPORT] & writes
    assert not ROLE_PERMISSIONS[OperatorRole.AUDITOR] & writes
    assert not ROLE_PERMISSIONS[OperatorRole.COMPLIANCE] & writes
    # Auditors see who revealed what; they never see the values themselves.
    assert Permission.PERSONAL_DATA_REVEAL not in ROLE_PERMISSIONS[OperatorRole.AUDITOR]


def test_permissions_for_is_the_union() -> None:
    assert permissions_for([]) == frozenset()
    combined = permissions_for([OperatorRole.SUPPORT, OperatorRole.RISK])
    assert combined == ROLE_PERMISSIONS[OperatorRole.SUPPORT] | ROLE_PERMISSIONS[OperatorRole.RISK]


def test_parse_operator_roles() -> None:
    assert parse_operator_roles(["admin"]) == {OperatorRole.ADMIN}
    with pytest.raises(InvalidInput):
        parse_operator_roles(["superuser"])
    with pytest.raises(InvalidInput):
        parse_operator_roles([])


_requested = st.lists(
    st.one_of(st.sampled_from(ALL_SCOPES), st.sampled_from(["*", "admin", "accounts:*"])),
    max_size=8,
)
_allowed = st.frozensets(st.sampled_from(ALL_SCOPES))


@given(_requested, _allowed)
def test_granted_scopes_never_exceed_allowed(requested: list[str], allowed: frozenset[str]) -> None:
    if not set(requested) <= allowed:
        with pytest.raises(InvalidInput) as caught:
            grantable_scopes(requested, allowed)
        assert caught.value.code == "invalid_scope"
        return
    granted = grantable_scopes(requested, allowed)
    assert set(granted) <= allowed
    assert set(granted) <= set(SCOPE_DESCRIPTIONS)
    if requested:
        assert granted == requested
    else:
        assert set(granted) == allowed - OPT_IN_SCOPES, "opt-in scopes only when asked for"


@given(st.sets(st.sampled_from(list(PartnerRole))), _requested)
def test_granted_scopes_never_exceed_the_roles(
    roles: set[PartnerRole], requested: list[str]
) -> None:
    allowed = scopes_for_roles(roles)
    try:
        granted = grantable_scopes(requested, allowed)
    except InvalidInput:
        return
    assert set(granted) <= allowed
