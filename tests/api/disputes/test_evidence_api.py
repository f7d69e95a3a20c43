"""Evidence over the API: the four accepted types round-trip byte for byte, every other
file is refused with a machine-readable problem, files larger than an ordinary request
body go through the upload path, everything is sealed at rest, and who may add evidence
when."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from tests.api.identity.test_operator_api import problem_code
from tests.support import disputes as d
from tests.support.oauth import ACTOR

from amanat.bootstrap import Container
from amanat.platform.settings import DisputeSettings, Settings

MAX_BYTES = 300_000  # above the tests' 64 KB request-body limit


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"disputes": DisputeSettings(evidence_max_bytes=MAX_BYTES, max_evidence_files=4)}
    )


async def _dispute(client: httpx.AsyncClient, container: Container) -> tuple[d.Shop, str]:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    return shop, (await d.opened(client, shop, payment, amount=10_000))["id"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (d.PDF, "application/pdf"),
        (d.PNG, "image/png"),
        (d.JPEG, "image/jpeg"),
        (d.TEXT, "text/plain; charset=utf-8"),
    ],
)
async def test_each_type_round_trips(
    client: httpx.AsyncClient, container: Container, content: bytes, content_type: str
) -> None:
    shop, dispute_id = await _dispute(client, container)
    added = await d.upload(client, shop, dispute_id, content, content_type)
    assert added.status_code == 201, added.text
    meta = added.json()
    media = content_type.split(";")[0]
    assert meta["object"] == "dispute_evidence" and meta["id"].startswith("dpe_")
    assert (meta["content_type"], meta["size"]) == (media, len(content))
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    assert meta["uploaded_by"] == "merchant"
    got = await client.get(f"/v1/disputes/{dispute_id}/evidence/{meta['id']}", headers=shop.auth)
    assert got.status_code == 200
    assert got.content == content
    assert got.headers["content-type"].startswith(media)
    assert got.headers["etag"] == f'"{meta["sha256"]}"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "attachment" in got.headers["content-disposition"]
    dispute = (await client.get(f"/v1/disputes/{dispute_id}", headers=shop.auth)).json()
    assert dispute["evidence"] == [meta]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code", "reason"),
    [
        (b"GIF89a", "image/gif", 415, "evidence_type_not_allowed", "content_type_not_allowed"),
        (d.PDF, None, 415, "evidence_type_not_allowed", "content_type_missing"),
        (b'{"a": 1}', "application/json", 415, "evidence_type_not_allowed", None),
        (b"MZ\x90\x00\x03 a program", "application/pdf", 422, "evidence_content_mismatch", None),
        (d.PNG, "image/jpeg", 422, "evidence_content_mismatch", None),
        (b"\x00\x01\x02", "text/plain", 422, "evidence_content_mismatch", None),
        (b"", "application/pdf", 422, "evidence_empty", None),
        (d.PDF + bytes(MAX_BYTES), "application/pdf", 413, "evidence_too_large", None),
    ],
)
async def test_refused_files_are_named_and_change_nothing(
    client: httpx.AsyncClient,
    container: Container,
    content: bytes,
    content_type: str | None,
    status: int,
    code: str,
    reason: str | None,
) -> None:
    shop, dispute_id = await _dispute(client, container)
    refused = await d.upload(client, shop, dispute_id, content, content_type)
    assert (refused.status_code, problem_code(refused)) == (status, code), refused.text
    body = refused.json()
    assert body["type"].endswith(f"/problems/{code}")
    if reason is not None:
        assert body["errors"][0]["code"] == reason
    dispute = (await client.get(f"/v1/disputes/{dispute_id}", headers=shop.auth)).json()
    assert (dispute["evidence"], dispute["version"]) == ([], 1)


async def test_a_file_larger_than_a_request_body_goes_through(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop, dispute_id = await _dispute(client, container)
    big = d.PDF + bytes(MAX_BYTES - len(d.PDF))  # 300 KB: the tests' body limit is 64 KB
    added = await d.upload(client, shop, dispute_id, big)
    assert added.status_code == 201, added.text
    got = await client.get(
        f"/v1/disputes/{dispute_id}/evidence/{added.json()['id']}", headers=shop.auth
    )
    assert got.content == big
    # Another path keeps the ordinary limit.
    too_big = await client.post(
        "/v1/disputes",
        content=b'{"payment_id": "' + b"x" * 70_000 + b'"}',
        headers=shop.auth | {"Idempotency-Key": d.key(), "Content-Type": "application/json"},
    )
    assert (too_big.status_code, problem_code(too_big)) == (413, "payload_too_large")


async def test_evidence_and_the_response_are_sealed_at_rest(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop, dispute_id = await _dispute(client, container)
    meta = (await d.upload(client, shop, dispute_id, d.TEXT, "text/plain")).json()
    explanation = "Bilal Ahmed signed the receipt at his door."
    await d.act(client, shop, dispute_id, "respond", explanation=explanation)
    row = await d.raw_evidence(container, meta["id"])
    stored = row["content"]
    assert stored.startswith("v1.")
    assert d.TEXT.decode() not in stored
    assert base64.b64encode(d.TEXT).decode() not in stored
    assert row["sha256"] == hashlib.sha256(d.TEXT).hexdigest() and row["size"] == len(d.TEXT)
    dispute = await d.raw_dispute(container, dispute_id)
    assert dispute["response_text"].startswith("v1.")
    assert explanation not in dispute["response_text"]
    read = (await client.get(f"/v1/disputes/{dispute_id}", headers=shop.auth)).json()
    assert read["response"]["explanation"] == explanation
    assert read["response"]["submitted_by"] == "merchant"


async def test_who_may_add_evidence_when(client: httpx.AsyncClient, container: Container) -> None:
    shop, dispute_id = await _dispute(client, container)
    assert (await d.upload(client, shop, dispute_id, d.PDF)).status_code == 201
    await d.act(client, shop, dispute_id, "respond", explanation="See the receipt.")
    late = await d.upload(client, shop, dispute_id, d.PDF)
    assert (late.status_code, problem_code(late)) == (409, "evidence_not_accepted")
    csrf = await d.operations(client, container)
    by_ops = await client.post(
        f"/operator/v1/disputes/{dispute_id}/evidence",
        content=d.TEXT,
        headers={"X-CSRF-Token": csrf, "Content-Type": "text/plain"},
    )
    assert by_ops.status_code == 201, by_ops.text
    assert by_ops.json()["uploaded_by"] == "operator" and by_ops.json()["uploaded_by_id"]
    seen = (await client.get(f"/v1/disputes/{dispute_id}", headers=shop.auth)).json()
    assert [e["uploaded_by"] for e in seen["evidence"]] == ["merchant", "operator"]
    await client.post(
        f"/operator/v1/disputes/{dispute_id}/decide",
        json={"outcome": "won", "note": "receipt shows delivery"},
        headers={"X-CSRF-Token": csrf},
    )
    closed = await client.post(
        f"/operator/v1/disputes/{dispute_id}/evidence",
        content=d.PDF,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/pdf"},
    )
    assert (closed.status_code, problem_code(closed)) == (409, "evidence_not_accepted")


async def test_a_dispute_holds_a_limited_number_of_files(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop, dispute_id = await _dispute(client, container)
    for _ in range(4):
        assert (await d.upload(client, shop, dispute_id, d.PDF)).status_code == 201
    refused = await d.upload(client, shop, dispute_id, d.PDF)
    assert (refused.status_code, problem_code(refused)) == (409, "evidence_limit_reached")


async def test_a_replayed_upload_keeps_one_file(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop, dispute_id = await _dispute(client, container)
    headers = shop.auth | {"Idempotency-Key": "upload-once", "Content-Type": "application/pdf"}
    url = f"/v1/disputes/{dispute_id}/evidence"
    first = await client.post(url, content=d.PDF, headers=headers)
    again = await client.post(url, content=d.PDF, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    other = await client.post(url, content=d.PDF + b"%", headers=headers)
    assert problem_code(other) == "idempotency_key_reused"
    dispute = (await client.get(f"/v1/disputes/{dispute_id}", headers=shop.auth)).json()
    assert len(dispute["evidence"]) == 1


async def test_an_operators_download_is_audited(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop, dispute_id = await _dispute(client, container)
    meta = (await d.upload(client, shop, dispute_id, d.PNG, "image/png")).json()
    await d.operations(client, container, "support")  # disputes.read only
    got = await client.get(f"/operator/v1/disputes/{dispute_id}/evidence/{meta['id']}")
    assert (got.status_code, got.content) == (200, d.PNG)
    [audited] = await d.audits(container, "dispute.evidence_downloaded")
    assert audited["target_id"] == dispute_id and audited["actor_type"] == "operator"
    wrong = await client.get(
        f"/operator/v1/disputes/dp_01JDX3M9Q5W8C2V7T4K6B0N1ZP/evidence/{meta['id']}"
    )
    assert (wrong.status_code, problem_code(wrong)) == (404, "not_found")


async def test_key_rotation_reencrypts_evidence_and_responses(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop, dispute_id = await _dispute(client, container)
    meta = (await d.upload(client, shop, dispute_id, d.PDF)).json()
    await d.act(client, shop, dispute_id, "respond", explanation="Delivered on time.")
    old_key = await container.protection.active_fields_key()
    new_key, _ = await container.protection.rotate_data_key(ACTOR)
    moved = await container.protection.reencrypt(ACTOR)
    assert moved["dispute_evidence.content"] == 1 and moved["disputes.response_text"] == 1
    assert (await d.raw_evidence(container, meta["id"]))["content"].startswith(f"v1.{new_key.id}.")
    assert (await d.raw_dispute(container, dispute_id))["response_text"].startswith(
        f"v1.{new_key.id}."
    )
    container.protection.cipher.forget(old_key)
    got = await client.get(f"/v1/disputes/{dispute_id}/evidence/{meta['id']}", headers=shop.auth)
    assert got.content == d.PDF
    read = (await client.get(f"/v1/disputes/{dispute_id}", headers=shop.auth)).json()
    assert read["response"]["explanation"] == "Delivered on time."
