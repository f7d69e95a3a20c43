"""The README's command list names every `amanat` command, and its examples run on a
fresh Debian (no `uuidgen`, which Debian does not install by default)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer.main
from tests.support.paths import REPO

from amanat.cli import app

ROOT = REPO


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    children = getattr(command, "commands", None)
    if children is None:
        yield " ".join(prefix)
        return
    for name, child in children.items():
        yield from _commands(child, (*prefix, name))


def test_the_command_list_names_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Commands", 1)[1].split("`amanat --help`", 1)[0]
    listed = {" ".join(name.split()) for name in section.strip(" `;\n").split("|")}
    listed = {name.removeprefix("amanat ") for name in listed}
    assert listed == set(_commands(typer.main.get_command(app)))


def test_no_example_needs_uuidgen() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    users = [page.name for page in pages if re.search(r"\buuidgen\b", page.read_text())]
    assert users == []
