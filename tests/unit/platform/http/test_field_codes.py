"""Every ``errors[].code`` the API can answer is in the documented list."""

from __future__ import annotations

import ast
import re
from typing import get_args

import pytest
from pydantic_core.core_schema import ErrorType
from tests.support.paths import REPO

from amanat.platform.http.errors import validation_errors
from amanat.platform.http.field_codes import FALLBACK_CODE, FIELD_CODES, field_code

ROOT = REPO


@pytest.mark.parametrize("error_type", get_args(ErrorType))
def test_every_pydantic_error_type_maps_to_a_documented_code(error_type: str) -> None:
    assert field_code(error_type) in FIELD_CODES


def test_the_codes_pydantic_answered_raw_are_mapped() -> None:
    assert field_code("int_from_float") == "invalid_type"
    assert field_code("value_error") == "invalid_value"
    assert field_code("something_pydantic_adds_next_year") == FALLBACK_CODE


def _custom_error_types() -> set[str]:
    """First arguments of every PydanticCustomError the code raises."""
    found: set[str] = set()
    for path in (ROOT / "src" / "amanat").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "PydanticCustomError"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(str(node.args[0].value))
    return found


def test_custom_error_types_keep_their_documented_code() -> None:
    customs = _custom_error_types()
    assert {"unknown_event_type", "int_type"} <= customs
    for custom in customs:
        assert field_code(custom) in FIELD_CODES, custom


def test_domain_families_raised_through_types_are_documented() -> None:
    # amanat.platform.http.types raises PydanticCustomError(exc.code) for these families.
    for family in ("invalid_iban", "invalid_raast_id", "invalid_cnic"):
        assert field_code(family) == family


def test_the_api_contract_lists_exactly_these_codes() -> None:
    text = (ROOT / "docs" / "api-contract.md").read_text()
    section = text.split("### Field codes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(FIELD_CODES)


def test_validation_errors_never_answer_an_undocumented_code() -> None:
    raw = [
        {"loc": ("body", "amount"), "type": "int_from_float", "msg": "m"},
        {"loc": ("body",), "type": "value_error", "msg": "Value error, give one"},
        {"loc": ("query", "limit"), "type": "int_parsing", "msg": "m"},
    ]
    codes = [e["code"] for e in validation_errors(raw)]
    assert codes == ["invalid_type", "invalid_value", "invalid_type"]
