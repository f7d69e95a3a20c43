"""Markdown to safe HTML for the human pages (problem types), with raw HTML switched off.

The catalogue's texts use a little Markdown (inline code, emphasis, links, lists).
markdown-it-py is already installed (rich depends on it) and follows CommonMark; with
``html`` disabled, any ``<tag>`` in a text is escaped rather than passed through, and its
link validation refuses ``javascript:`` and similar URLs, so a text can never inject markup.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

_RENDERER = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def render(text: str) -> Markup:
    """``text`` as HTML, safe to insert into a page as is."""
    return Markup(_RENDERER.render(text))  # noqa: S704 - raw HTML is disabled above
