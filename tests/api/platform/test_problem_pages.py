"""The `/problems/<code>` pages: rendered Markdown, cause, remedy and an example for every
code a client can meet, rail failure codes included, and nothing a text holds can inject
markup."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from amanat.bootstrap import registry
from amanat.platform.http import problems
from amanat.platform.http.problems import CATALOGUE, ProblemType
from amanat.sandbox_rail.magic import MAGIC_VALUES, Outcome

registry()  # every capability's problem codes are in the catalogue

# Every failure code a payment can end with: each refusal of the sandbox rail's table,
# the rail's generic statuses without a reason code, and the dispatcher's give-up.
RAIL_FAILURE_CODES = sorted(
    {f"rail_{v.reason_code.lower()}" for v in MAGIC_VALUES if v.outcome is Outcome.REFUSE}
    | {"rail_rejected", "rail_declined", "rail_unavailable"}
)


def _section(page: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert found, f"no {name} section"
    return found.group(1)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


@pytest.mark.parametrize("code", sorted(set(CATALOGUE) | set(RAIL_FAILURE_CODES)))
async def test_every_code_has_a_page_with_cause_remedy_and_example(
    client: httpx.AsyncClient, code: str
) -> None:
    response = await client.get(f"/problems/{code}")
    assert response.status_code == 200, response.text
    page = response.text
    entry = CATALOGUE[code]
    assert "`" not in _text(page), "Markdown left unrendered"
    assert _text(_section(page, "cause")).strip()
    assert _text(_section(page, "remedy")).strip()
    example = json.loads(_text(_section(page, "example").split("<pre>", 1)[1]))
    if entry.is_rail_failure:
        assert example["status"] == "failed"
        assert example["failure"]["code"] == code
    else:
        assert example["status"] == entry.status
        assert example["type"].endswith(f"/problems/{code}")
    assert "<script" not in page.lower()  # and no CDN: the pages need no script at all


async def test_rail_failure_pages_say_whether_to_retry(client: httpx.AsyncClient) -> None:
    for code in RAIL_FAILURE_CODES:
        remedy = _text(_section((await client.get(f"/problems/{code}")).text, "remedy"))
        assert re.search(r"retry|resend|new payment|new collection", remedy, re.I), code


async def test_markdown_is_rendered(client: httpx.AsyncClient) -> None:
    page = (await client.get("/problems/unauthorized")).text
    assert "<code>POST /oauth/token</code>" in page


@pytest.fixture
def hostile_entry() -> Iterator[ProblemType]:
    entry = ProblemType(
        "test_hostile_text",
        400,
        "Hostile <b>title</b>",
        "A <script>alert(1)</script> cause with `code` and [a link](javascript:alert(2)).",
        'Remedy <img src=x onerror="alert(3)">.',
    )
    problems.register(entry)
    yield entry
    del CATALOGUE[entry.code]


async def test_page_texts_are_escaped(
    client: httpx.AsyncClient, hostile_entry: ProblemType
) -> None:
    page = (await client.get(f"/problems/{hostile_entry.code}")).text
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert "<b>title" not in page
    assert 'href="javascript:' not in page
    assert "<code>code</code>" in page


def test_every_failure_code_a_payment_can_carry_has_a_page_and_is_published() -> None:
    """The OpenAPI enum, the domain's closed list and the catalogue's rail pages agree."""
    from amanat.app import create_app
    from amanat.payments.domain.payments import RAIL_FAILURE_CODES
    from amanat.platform.http.problems import CATALOGUE

    rail_pages = {code for code, entry in CATALOGUE.items() if entry.is_rail_failure}
    assert rail_pages == set(RAIL_FAILURE_CODES)
    schema = create_app().openapi()["components"]["schemas"]["FailureOut"]
    assert sorted(schema["properties"]["code"]["enum"]) == sorted(RAIL_FAILURE_CODES)
