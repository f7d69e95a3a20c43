"""An evidence upload is read by its route only after the caller is authenticated: the
edge never reads, scans or buffers a file body for an anonymous caller."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(
    "path", ["/v1/disputes/dp_unknown/evidence", "/operator/v1/disputes/dp_unknown/evidence"]
)
async def test_an_anonymous_upload_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, path: str
) -> None:
    # A JSON body the edge would refuse (duplicate keys) if it read it: it answers 401, so
    # the body was never inspected; 2 MB is over the ordinary body limit too.
    body = b'{"a": 1, "a": 2, "pad": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
