"""The support playbooks (``docs/playbooks.md``) as the console serves them.

One section per payment failure code and per alert kind, each under a heading that is
exactly its code (``## rail_ac01``), so its anchor is stable on GitHub and in the console
alike (``/console/playbooks#rail_ac01``). The file is read from the source tree, next to
the package (``<repo>/docs/playbooks.md``); an installed wheel carries no ``docs/``, and
the page then says where to read them.
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup

from amanat.platform.http.markdown import render, slug

DOC = "playbooks.md"
CONSOLE_PATH = "/console/playbooks"
SOURCE_URL_HINT = "docs/playbooks.md in the amanat source repository"
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)


def playbooks_path() -> Path:
    # src/amanat/console/playbooks.py -> <repo>/docs/playbooks.md
    return Path(__file__).resolve().parents[3] / "docs" / DOC


def load(path: Path | None = None) -> str | None:
    """The playbooks' Markdown, or None when the docs are not installed."""
    try:
        return (path or playbooks_path()).read_text(encoding="utf-8")
    except OSError:
        return None


def anchors(text: str) -> set[str]:
    """Every heading's anchor in ``text`` (outside code fences)."""
    outside = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return {slug(m.group(1).replace("`", "")) for m in _HEADING.finditer(outside)}


def as_html(text: str) -> Markup:
    return render(text, anchors=True)


def href(playbook_or_code: str | None) -> str | None:
    """The console link of an alert's ``playbook`` (``playbooks.md#payment_stuck``) or of a
    failure code (``rail_ac01``); None for a reference to another document."""
    if not playbook_or_code:
        return None
    document, hash_, anchor = playbook_or_code.partition("#")
    if not hash_:
        return f"{CONSOLE_PATH}#{slug(document)}"
    if document.rsplit("/", 1)[-1] != DOC:
        return None
    return f"{CONSOLE_PATH}#{slug(anchor)}"
