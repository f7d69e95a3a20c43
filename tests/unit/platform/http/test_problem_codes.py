"""Every problem ``code`` the server can answer has a catalogue entry (so its ``type`` page
at /problems/<code> exists): found by reading the source for every way a code is named."""

from __future__ import annotations

import ast

from tests.support.paths import REPO

from amanat.bootstrap import registry
from amanat.platform.http.problems import CATALOGUE

registry()  # every capability's problem codes are in the catalogue

ROOT = REPO
_PROBLEM_CALLS = {"ApiProblem", "problem_response", "problem_body"}


def _codes() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in (ROOT / "src" / "amanat").rglob("*.py"):
        if "sandbox_rail" in path.parts:
            continue  # an outside system with its own error shape
        if path.name == "sandbox_bank_data.py":
            continue  # its ``code=`` arguments are bank transaction codes, not problems
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    if name in _PROBLEM_CALLS:
                        found[first.value] = where
                    if name == "OAuthError":
                        found[f"oauth_{first.value}"] = where
                for keyword in node.keywords:
                    value = keyword.value
                    if (
                        keyword.arg == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found[str(value.value)] = where
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and [getattr(t, "id", None) for t in item.targets] == ["code"]
                        and isinstance(item.value, ast.Constant)
                    ):
                        found[str(item.value.value)] = where
    return found


def test_the_source_names_codes_the_scan_can_see() -> None:
    codes = _codes()
    assert {"validation_error", "oauth_invalid_client", "insufficient_funds"} <= set(codes)


def test_every_code_the_server_can_answer_is_catalogued() -> None:
    missing = {code: where for code, where in _codes().items() if code not in CATALOGUE}
    assert missing == {}
