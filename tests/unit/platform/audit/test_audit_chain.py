"""The audit hash chain, in memory: a chain built by appending verifies, and every kind of
tampering is named at the first record it touches (and the walk goes on past it)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from amanat.platform.audit.domain import (
    GENESIS_HASH,
    Actor,
    AuditRecord,
    ChainVerifier,
    Finding,
    Seal,
    StoredRecord,
    seal_message,
)
from amanat.platform.audit.seals import Ed25519SealSigner

START = datetime(2026, 11, 24, 8, 15, 30, 123000, tzinfo=UTC)

# Every stored column of a record except seq (whose changes are gaps and swaps, below).
CONTENT_FIELDS = [
    "id",
    "occurred_at",
    "actor.type",
    "actor.id",
    "actor.source_ip",
    "actor.user_agent",
    "actor.request_id",
    "action",
    "target_type",
    "target_id",
    "payload",
]

texts = st.text(min_size=0, max_size=12)
json_values = st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), texts)
payloads = st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4)
entries = st.fixed_dictionaries(
    {
        "action": st.text(min_size=1, max_size=20),
        "target_id": st.one_of(st.none(), texts),
        "source_ip": st.one_of(st.none(), st.sampled_from(["10.0.0.1", "2001:db8::1"])),
        "payload": payloads,
    }
)
chains = st.lists(entries, min_size=2, max_size=10)


def build(entries: list[dict[str, Any]]) -> list[StoredRecord]:
    """Append records one by one, as the repository does."""
    out: list[StoredRecord] = []
    prev = GENESIS_HASH
    for n, entry in enumerate(entries, start=1):
        record = AuditRecord(
            seq=n,
            id=f"audit_{n:04d}",
            occurred_at=START + timedelta(seconds=n),
            actor=Actor(type="operator", id=f"op_{n}", source_ip=entry["source_ip"]),
            action=entry["action"],
            target_type="partner",
            target_id=entry["target_id"],
            payload=entry["payload"],
            prev_hash=prev,
        )
        prev = record.compute_hash()
        out.append(StoredRecord(record=record, stored_hash=prev))
    return out


def signer() -> Ed25519SealSigner:
    return Ed25519SealSigner(Ed25519PrivateKey.generate())


def seal_at(records: list[StoredRecord], seq: int, by: Ed25519SealSigner) -> Seal:
    head_hash = records[seq - 1].stored_hash
    return Seal(
        seq=seq,
        head_hash=head_hash,
        signature=by.sign(seal_message(seq, head_hash, START)),
        public_key=by.public_key,
        sealed_at=START,
    )


def verify(
    records: list[StoredRecord],
    *,
    seals: tuple[Seal, ...] | list[Seal] = (),
    trusted: Ed25519SealSigner | None = None,
    head: tuple[int, str] | None = None,
    sealed_action: str | None = None,
) -> tuple[Finding | None, int]:
    """Feed records in seq order with the seals inside them, then the rest, as the service
    does; returns the first finding in record order and how many records were walked.
    Without ``head``, the head agrees with the last record."""
    ordered = sorted(records, key=lambda s: s.record.seq)
    if head is None:
        head = (ordered[-1].record.seq, ordered[-1].stored_hash) if ordered else (0, GENESIS_HASH)

    def signature_ok(seal: Seal) -> bool:
        return (
            trusted is not None
            and seal.public_key == trusted.public_key
            and trusted.verify(seal.public_key, seal.message(), seal.signature)
        )

    verifier = ChainVerifier(signature_ok, head_seq=head[0], sealed_action=sealed_action)
    last = ordered[-1].record.seq if ordered else 0
    inside = sorted((s for s in seals if s.seq <= last), key=lambda s: s.seq)
    beyond = sorted((s for s in seals if s.seq > last), key=lambda s: s.seq)
    verifier.feed_batch(ordered, inside, [])
    findings = verifier.finish(beyond, [], head_hash=head[1], head_seq_after=head[0])
    return (findings[0] if findings else None), verifier.checked


def changed(record: AuditRecord, field: str) -> AuditRecord:
    """The record with one field given a different value."""
    if field.startswith("actor."):
        name = field.removeprefix("actor.")
        old = getattr(record.actor, name)
        actor = dataclasses.replace(record.actor, **{name: (old or "") + "x"})
        return dataclasses.replace(record, actor=actor)
    old = getattr(record, field)
    new: Any
    if field == "occurred_at":
        new = old + timedelta(milliseconds=1)
    elif field == "payload":
        new = old | {"tampered": not old.get("tampered", False)}
    else:
        new = (old or "") + "x"
    return dataclasses.replace(record, **{field: new})


def where(finding: Finding | None) -> tuple[int, str] | None:
    return None if finding is None else (finding.seq, finding.kind)


def head_of(records: list[StoredRecord]) -> tuple[int, str]:
    return records[-1].record.seq, records[-1].stored_hash


# -- a clean chain ------------------------------------------------------------------------


@given(chains)
def test_a_chain_built_by_appending_verifies(chain: list[dict[str, Any]]) -> None:
    records = build(chain)
    key = signer()
    seals = [seal_at(records, 1, key), seal_at(records, len(records), key)]
    finding, checked = verify(records, seals=seals, trusted=key, head=head_of(records))
    assert finding is None
    assert checked == len(records)


def test_an_empty_log_verifies_against_the_genesis_head() -> None:
    assert verify([], head=(0, GENESIS_HASH)) == (None, 0)
    finding, _ = verify([], head=(0, "f" * 64))
    assert where(finding) == (1, "head_mismatch")


# -- edits --------------------------------------------------------------------------------


@given(chains, st.data())
def test_any_edited_field_is_named_at_its_record(
    chain: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = build(chain)
    index = data.draw(st.integers(0, len(records) - 1), label="index")
    field = data.draw(st.sampled_from(CONTENT_FIELDS), label="field")
    target = records[index]
    records[index] = dataclasses.replace(target, record=changed(target.record, field))
    finding, checked = verify(records)
    assert where(finding) == (index + 1, "edited")
    assert checked == len(records)


@given(chains, st.data())
def test_an_edited_link_or_hash_is_named_at_its_record(
    chain: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = build(chain)
    index = data.draw(st.integers(0, len(records) - 1), label="index")
    target = records[index]
    records[index] = dataclasses.replace(target, stored_hash="0" * 63 + "1")
    finding, _ = verify(records)
    assert where(finding) == (index + 1, "edited")

    records = build(chain)
    target = records[index]
    relinked = dataclasses.replace(target.record, prev_hash="a" * 64)
    records[index] = dataclasses.replace(target, record=relinked)
    finding, _ = verify(records)
    assert where(finding) == (index + 1, "broken_link")


@given(chains, st.data())
def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(
    chain: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = build(chain)
    index = data.draw(st.integers(0, len(records) - 1), label="index")
    field = data.draw(st.sampled_from(CONTENT_FIELDS), label="field")
    original_head = head_of(records)
    key = signer()
    seal = seal_at(records, len(records), key)
    edited = changed(records[index].record, field)
    records[index] = StoredRecord(record=edited, stored_hash=edited.compute_hash())

    finding, _ = verify(records)
    if index < len(records) - 1:
        assert where(finding) == (index + 2, "broken_link")
    else:
        # The last record has no successor: only the head row or a seal can tell.
        assert finding is None
        finding, _ = verify(records, head=original_head)
        assert where(finding) == (index + 1, "head_mismatch")
        finding, _ = verify(records, seals=[seal], trusted=key)
        assert where(finding) == (index + 1, "seal_mismatch")


@given(chains, st.data())
def test_a_rewritten_tail_is_caught_by_the_seal(
    chain: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Rehashing every record from the edit on leaves a consistent chain; the seal is not."""
    records = build(chain)
    key = signer()
    seal = seal_at(records, len(records), key)
    index = data.draw(st.integers(0, len(records) - 1), label="index")
    prev = records[index - 1].stored_hash if index else GENESIS_HASH
    for i in range(index, len(records)):
        record = records[i].record
        if i == index:
            record = changed(record, "payload")
        record = dataclasses.replace(record, prev_hash=prev)
        prev = record.compute_hash()
        records[i] = StoredRecord(record=record, stored_hash=prev)
    assert verify(records)[0] is None
    finding, _ = verify(records, seals=[seal], trusted=key)
    assert where(finding) == (len(records), "seal_mismatch")


# -- deletions, swaps, truncation ---------------------------------------------------------


@given(chains, st.data())
def test_a_removed_record_leaves_a_gap_at_its_seq(
    chain: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = build(chain)
    head = head_of(records)
    index = data.draw(st.integers(0, len(records) - 1), label="index")
    del records[index]
    finding, _ = verify(records, head=head)
    if index < len(records):  # a middle record
        assert where(finding) == (index + 1, "gap")
    else:  # the last one: the head still counts it
        assert where(finding) == (index + 1, "truncated")


@given(chains, st.data())
def test_swapped_seq_values_are_caught_at_the_first_swapped_record(
    chain: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = build(chain)
    first = data.draw(st.integers(0, len(records) - 2), label="first")
    second = data.draw(st.integers(first + 1, len(records) - 1), label="second")
    a, b = records[first], records[second]
    records[first] = dataclasses.replace(a, record=dataclasses.replace(a.record, seq=b.record.seq))
    records[second] = dataclasses.replace(b, record=dataclasses.replace(b.record, seq=a.record.seq))
    finding, checked = verify(records, head=head_of(build(chain)))
    assert where(finding) == (first + 1, "broken_link")
    assert checked == len(records)


@given(chains, st.data())
def test_truncation_below_a_seal_is_named(chain: list[dict[str, Any]], data: st.DataObject) -> None:
    records = build(chain)
    key = signer()
    sealed = data.draw(st.integers(1, len(records)), label="sealed")
    seal = seal_at(records, sealed, key)
    keep = data.draw(st.integers(0, sealed - 1), label="keep")
    finding, checked = verify(records[:keep], seals=[seal], trusted=key)
    assert where(finding) == (keep + 1, "truncated")
    assert checked == keep


def test_a_head_moved_back_or_forward_is_named() -> None:
    records = build([{"action": "a", "target_id": None, "source_ip": None, "payload": {}}] * 5)
    finding, _ = verify(records, head=(7, "f" * 64))
    assert where(finding) == (6, "truncated")
    finding, _ = verify(records, head=(3, records[2].stored_hash))
    assert where(finding) == (4, "head_mismatch")
    finding, _ = verify(records, head=(5, "f" * 64))
    assert where(finding) == (5, "head_mismatch")


# -- seals --------------------------------------------------------------------------------


@pytest.mark.parametrize("claimed_key", ["forger", "trusted"])
def test_a_forged_seal_fails_its_signature(claimed_key: str) -> None:
    records = build([{"action": "a", "target_id": None, "source_ip": None, "payload": {}}] * 4)
    trusted, forger = signer(), signer()
    genuine = seal_at(records, 2, trusted)
    forged = seal_at(records, 4, forger)
    if claimed_key == "trusted":  # signed by another key, claiming ours
        forged = dataclasses.replace(forged, public_key=trusted.public_key)
    finding, _ = verify(records, seals=[genuine, forged], trusted=trusted)
    assert where(finding) == (4, "bad_signature")


def test_a_seal_over_a_different_sealed_at_fails_its_signature() -> None:
    records = build([{"action": "a", "target_id": None, "source_ip": None, "payload": {}}] * 2)
    key = signer()
    moved = dataclasses.replace(seal_at(records, 2, key), sealed_at=START + timedelta(days=1))
    finding, _ = verify(records, seals=[moved], trusted=key)
    assert finding is not None
    assert finding.kind == "bad_signature"


# -- every finding, seal records, the witness ---------------------------------------------

PLAIN = {"action": "a", "target_id": None, "source_ip": None, "payload": {}}


def all_findings(
    records: list[StoredRecord],
    *,
    seals: list[Seal],
    witnessed: list[Any],
    trusted: Ed25519SealSigner,
) -> list[tuple[int, str]]:
    ordered = sorted(records, key=lambda s: s.record.seq)
    last = ordered[-1]
    verifier = ChainVerifier(
        lambda s: (
            s.public_key == trusted.public_key
            and trusted.verify(s.public_key, s.message(), s.signature)
        ),
        head_seq=last.record.seq,
    )
    verifier.feed_batch(ordered, [s for s in seals if s.seq <= last.record.seq], witnessed)
    findings = verifier.finish(
        [s for s in seals if s.seq > last.record.seq],
        [],
        head_hash=last.stored_hash,
        head_seq_after=last.record.seq,
    )
    return [(f.seq, f.kind) for f in findings]


def sealed_chain(key: Ed25519SealSigner) -> tuple[list[StoredRecord], Seal]:
    """Records 1-3, a seal over 3 and its audit.sealed record 4."""
    plain = build([PLAIN] * 3)
    seal = seal_at(plain, 3, key)
    entries: list[dict[str, Any]] = [PLAIN] * 3 + [
        {
            "action": "audit.sealed",
            "target_id": "3",
            "source_ip": None,
            "payload": {"head_hash": seal.head_hash},
        }
    ]
    return build(entries), seal


def test_every_edited_record_is_named_not_just_the_first() -> None:
    records = build([PLAIN] * 6)
    for index in (1, 4):
        target = records[index]
        records[index] = dataclasses.replace(target, record=changed(target.record, "action"))
    key = signer()
    assert all_findings(records, seals=[], witnessed=[], trusted=key) == [
        (2, "edited"),
        (5, "edited"),
    ]


def test_an_unreadable_record_is_named_and_the_walk_goes_on() -> None:
    records = build([PLAIN] * 4)
    records[1] = dataclasses.replace(records[1], unreadable=("payload",))
    records[3] = dataclasses.replace(records[3], stored_hash="e" * 64)
    key = signer()
    assert all_findings(records, seals=[], witnessed=[], trusted=key) == [
        (2, "unparsable"),
        (4, "edited"),
    ]


def test_a_removed_seal_record_after_the_newest_seal_is_truncation() -> None:
    key = signer()
    records, seal = sealed_chain(key)
    assert all_findings(records, seals=[seal], witnessed=[seal], trusted=key) == []
    # The head rewound to 3 along with the deletion: only the seal's record can tell.
    assert all_findings(records[:3], seals=[seal], witnessed=[seal], trusted=key) == [
        (4, "truncated")
    ]


def test_seals_deleted_from_the_database_are_missing() -> None:
    key = signer()
    records, seal = sealed_chain(key)
    assert all_findings(records, seals=[], witnessed=[seal], trusted=key) == [(3, "seal_missing")]
    # Without a witness, the chain's own audit.sealed record names the missing seal.
    assert all_findings(records, seals=[], witnessed=[], trusted=key) == [(3, "seal_missing")]


def test_witness_lines_out_of_order_or_unreadable_are_findings() -> None:
    from amanat.platform.audit.domain import UnreadableLine

    key = signer()
    records, seal = sealed_chain(key)
    witnessed = [UnreadableLine(1, "not JSON"), seal, seal]
    assert all_findings(records, seals=[seal], witnessed=witnessed, trusted=key) == [
        (0, "witness_unreadable")
    ]
