"""``docs/access-control.md`` prints the access tables; it must equal ``amanat.identity.access``.

The two Markdown tables are parsed back into the shapes of ``ROLE_SCOPES`` and
``ROLE_PERMISSIONS`` and compared exactly, so neither the code nor the document can change
without the other.
"""

from __future__ import annotations

import re

import pytest
from tests.support.paths import REPO

from amanat.identity.access import (
    ROLE_PERMISSIONS,
    ROLE_SCOPES,
    SCOPE_DESCRIPTIONS,
    OperatorRole,
    PartnerRole,
    Permission,
)

DOC = REPO / "docs" / "access-control.md"
CHECK = "✓"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_after(heading: str, text: str | None = None) -> list[list[str]]:
    """The first Markdown table under ``heading``: header row first, separator dropped."""
    lines = (text if text is not None else DOC.read_text(encoding="utf-8")).splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        pytest.fail(f"{DOC.name} has no heading {heading!r}")
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.lstrip().startswith("|"):
            rows.append(_cells(line))
        elif rows:
            break  # the table ended
    assert len(rows) >= 2, f"no table under {heading!r}"
    header, separator, *body = rows
    assert all(re.fullmatch(r":?-+:?", cell) for cell in separator), separator
    assert all(len(row) == len(header) for row in body), f"ragged table under {heading!r}"
    return [header, *body]


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected a single `code` cell, got {cell!r}"
    return match.group(1)


def documented_role_scopes() -> dict[PartnerRole, frozenset[str]]:
    header, *body = table_after("## Partner roles → scopes")
    assert header == ["role", "scopes"]
    table: dict[PartnerRole, frozenset[str]] = {}
    for role_cell, scopes_cell in body:
        role = PartnerRole(_code(role_cell))
        assert role not in table, f"{role} listed twice"
        scopes = re.findall(r"`([^`]+)`", scopes_cell)
        assert len(scopes) == len(set(scopes)), f"{role}: a scope is listed twice"
        assert re.sub(r"`[^`]+`", "", scopes_cell).strip() == "", f"{role}: stray text"
        table[role] = frozenset(scopes)
    return table


def documented_role_permissions(
    text: str | None = None,
) -> dict[OperatorRole, frozenset[Permission]]:
    header, *body = table_after("## Operator roles → permissions", text)
    assert header[0] == "permission"
    roles = [OperatorRole(name) for name in header[1:]]
    assert len(roles) == len(set(roles)), "a role column appears twice"
    granted: dict[OperatorRole, set[Permission]] = {role: set() for role in roles}
    seen: set[Permission] = set()
    for permission_cell, *marks in body:
        permission = Permission(_code(permission_cell))
        assert permission not in seen, f"{permission} listed twice"
        seen.add(permission)
        for role, mark in zip(roles, marks, strict=True):
            assert mark in {CHECK, ""}, f"{permission}/{role}: use {CHECK} or leave blank"
            if mark == CHECK:
                granted[role].add(permission)
    assert seen == set(Permission), f"permissions missing a row: {set(Permission) - seen}"
    return {role: frozenset(perms) for role, perms in granted.items()}


def test_partner_scope_table_matches_the_code() -> None:
    assert documented_role_scopes() == ROLE_SCOPES


def test_operator_permission_table_matches_the_code() -> None:
    assert documented_role_permissions() == ROLE_PERMISSIONS


def test_tables_cover_every_role_and_only_known_scopes() -> None:
    assert set(documented_role_scopes()) == set(PartnerRole)
    assert set(documented_role_permissions()) == set(OperatorRole)
    every_scope = frozenset().union(*documented_role_scopes().values())
    assert every_scope <= set(SCOPE_DESCRIPTIONS)


def test_every_role_has_a_least_privilege_note() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Least privilege, role by role", 1)
    assert len(section) == 2, "the least-privilege section is missing"
    for role in OperatorRole:
        assert f"- **{role.value}**" in section[1], f"no least-privilege note for {role}"


def test_the_parser_notices_a_drift() -> None:
    """Guard the guard: a single changed mark must make the comparison fail."""
    original = DOC.read_text(encoding="utf-8")
    row = "| `keys.rotate` |  |  |  |  | ✓ |  |"
    assert row in original
    drifted = original.replace(row, "| `keys.rotate` | ✓ |  |  |  | ✓ |  |")
    assert documented_role_permissions(drifted) != ROLE_PERMISSIONS
