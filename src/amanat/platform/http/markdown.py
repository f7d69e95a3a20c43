"""Markdown to safe HTML for the human pages (problem types), with raw HTML switched off.

The catalogue's texts use a little Markdown (inline code, emphasis, links, lists).
markdown-it-py is already installed (rich depends on it) and follows CommonMark; with
``html`` disabled, any ``<tag>`` in a text is escaped rather than passed through, and its
link validation refuses ``javascript:`` and similar URLs, so a text can never inject markup.
"""

from __future__ import annotations

import re
from itertools import pairwise

from markdown_it import MarkdownIt
from markupsafe import Markup

_RENDERER = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_NOT_IN_SLUG = re.compile(r"[^a-z0-9_\- ]")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub spells it: lower case, punctuation but ``-`` and ``_``
    dropped, spaces as ``-`` (``## rail_ac01`` is ``#rail_ac01`` on both)."""
    return _NOT_IN_SLUG.sub("", heading.strip().lower()).replace(" ", "-")


def render(text: str, *, anchors: bool = False) -> Markup:
    """``text`` as HTML, safe to insert into a page as is; with ``anchors``, every heading
    carries an ``id`` (:func:`slug`) that links can point at."""
    if not anchors:
        return Markup(_RENDERER.render(text))  # noqa: S704 - raw HTML is disabled above
    tokens = _RENDERER.parse(text)
    for opening, inline in pairwise(tokens):
        if opening.type == "heading_open" and inline.type == "inline":
            opening.attrSet("id", slug(inline.content.replace("`", "")))
    html = _RENDERER.renderer.render(tokens, _RENDERER.options, {})
    return Markup(html)  # noqa: S704 - raw HTML is disabled above; ids are slugs
