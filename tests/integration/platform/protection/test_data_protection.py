"""Encryption at rest: envelope encryption bound to its row, rotation, blind indexes,
crypto-shredding, and a database file that shows no personal data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB

from amanat.bootstrap import Container
from amanat.identity.tables import operators
from amanat.kernel.clock import FrozenClock
from amanat.kernel.errors import InvalidInput
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.tables import audit_log
from amanat.platform.crypto.field_cipher import FieldContext, KeyUnavailable
from amanat.platform.crypto.master_keys import LocalMasterKey, MasterKeyError, VaultTransitMasterKey
from amanat.platform.protection.ports import HolderLookup, SubjectRecord
from amanat.platform.protection.service import ACTIVE_KEY_MAX_AGE
from amanat.platform.protection.tables import data_keys, data_subjects

ACTOR = Actor(type="cli", id="test")
NAME = "Ayesha Khan"
IBAN = "PK36SCBL0000001123456702"
RAAST = "+923001234567"
CNIC = "35202-1234567-3"


async def _partner(container: Container) -> str:
    partner = await container.partners.create_partner(
        ACTOR, name="Shop", roles=["merchant"], mode="sandbox"
    )
    return partner.id


async def _subject(container: Container, partner_id: str, **overrides: str) -> str:
    fields = {"name": NAME, "iban": IBAN, "raast_id": RAAST, "cnic": CNIC} | overrides
    record = await container.protection.create_subject(ACTOR, partner_id, **fields)
    return record.id


async def test_personal_fields_round_trip_and_are_stored_encrypted(container: Container) -> None:
    partner_id = await _partner(container)
    subject_id = await _subject(container, partner_id, raast_id="03001234567")
    details = await container.protection.reveal(subject_id, partner_id=partner_id)
    assert (details.name, details.iban, details.raast_id, details.cnic) == (
        NAME,
        IBAN,
        RAAST,
        "3520212345673",
    )
    async with container.db.read() as conn:
        row = (await conn.execute(sa.select(data_subjects))).one()
    stored = " ".join(str(v) for v in row)
    for clear in (NAME, IBAN, RAAST, "3520212345673", "1123456702"):
        assert clear not in stored
    assert row.iban_enc.startswith("v1.")
    assert row.iban_last4 == "6702" and row.bank_code == "SCBL"


async def test_ciphertext_copied_to_another_row_does_not_decrypt(container: Container) -> None:
    partner_id = await _partner(container)
    first = await _subject(container, partner_id)
    second = await _subject(container, partner_id)
    async with container.db.read() as conn:
        rows = {r.id: r for r in (await conn.execute(sa.select(data_subjects))).all()}
    stolen = rows[first].name_enc
    with pytest.raises(KeyUnavailable):
        await container.protection.cipher.decrypt(
            stolen, context=FieldContext("data_subjects", "name_enc", second)
        )
    with pytest.raises(KeyUnavailable):
        await container.protection.cipher.decrypt(
            stolen, context=FieldContext("data_subjects", "iban_enc", first)
        )


async def test_blind_index_finds_without_decrypting_and_is_scoped(container: Container) -> None:
    shop = await _partner(container)
    other = await _partner(container)
    mine = await _subject(container, shop)
    await _subject(container, other)
    found = await container.protection.find(
        "iban", "pk36 scbl 0000 0011 2345 6702", partner_id=shop
    )
    assert [r.id for r in found] == [mine]
    by_phone = await container.protection.find("raast_id", "0300-1234567", partner_id=shop)
    assert [r.id for r in by_phone] == [mine]
    by_cnic = await container.protection.find("cnic", "3520212345673", partner_id=None)
    assert len(by_cnic) == 2
    async with container.db.read() as conn:
        bidx = (await conn.execute(sa.select(data_subjects.c.cnic_bidx))).scalars().all()
    assert all(len(v) == 64 and CNIC.replace("-", "") not in v for v in bidx)


async def test_holders_of_many_lookups_are_found_in_one_call(container: Container) -> None:
    shop = await _partner(container)
    other = await _partner(container)
    ayesha = await _subject(container, shop, raast_id="03001111111", cnic="3520211111111")
    bilal = await _subject(
        container,
        shop,
        name="Bilal Ahmed",
        iban="PK24SCBL0000001171495101",
        raast_id="03002222222",
        cnic="3520222222222",
    )
    theirs = await _subject(container, other, raast_id="03003333333", cnic="3520233333333")
    gone = await _subject(
        container, shop, name="Sana Malik", raast_id="03004444444", cnic="3520244444444"
    )
    await container.protection.erase_subject(ACTOR, gone, reason="customer request")
    lookups = [
        HolderLookup(shop, "iban", "pk36 scbl 0000 0011 2345 6702", "ayesha  KHAN"),
        HolderLookup(shop, "iban", "PK24SCBL0000001171495101", "Bilal Ahmed"),
        HolderLookup(shop, "raast_id", "0300-2222222", "Bilal Ahmed"),
        HolderLookup(other, "iban", IBAN, NAME),  # the other partner's own customer
        HolderLookup(shop, "iban", IBAN, "Someone Else"),  # same account, another name
        HolderLookup(shop, "raast_id", "03004444444", "Sana Malik"),  # erased
        HolderLookup(shop, "raast_id", "03009999999", NAME),  # nobody
        HolderLookup(shop, "iban", "PK00NOTANIBAN", NAME),  # malformed
    ]
    found = await container.protection.find_holders(lookups)
    outcome = {lookup: (r.id if isinstance(r, SubjectRecord) else r) for lookup, r in found.items()}
    assert [outcome[lookup] for lookup in lookups[:7]] == [
        ayesha,
        bilal,
        bilal,
        theirs,
        None,
        None,
        None,
    ]
    assert isinstance(outcome[lookups[7]], InvalidInput)
    # The single lookup answers as the batch does.
    for lookup in lookups[:7]:
        single = await container.protection.find_holder(
            lookup.field, lookup.value, lookup.name, partner_id=lookup.partner_id
        )
        assert (single.id if single else None) == outcome[lookup]
    with pytest.raises(InvalidInput):
        await container.protection.find_holder("iban", "PK00NOTANIBAN", NAME, partner_id=shop)


async def test_many_records_under_one_identifier_are_read_fifty_newest_at_most(
    container: Container, clock: FrozenClock
) -> None:
    shop = await _partner(container)
    made = []
    for n in range(52):
        clock.advance(1)
        made.append(await _subject(container, shop, name=f"Payee {n}"))
    other = await _subject(container, shop, iban="PK24SCBL0000001171495101")
    protection = container.protection
    key = await protection.blind_index_key()
    mine = await protection.cipher.blind_index(key, "iban", IBAN)
    theirs = await protection.cipher.blind_index(key, "iban", "PK24SCBL0000001171495101")
    async with container.transactions.read() as tx:
        found = await tx.subjects.find_many("iban", [(shop, mine), (shop, theirs)])
    assert [r.id for r in found[(shop, mine)]] == made[::-1][:50]
    assert [r.id for r in found[(shop, theirs)]] == [other]


async def test_erasure_shreds_the_subject_key_and_is_audited(container: Container) -> None:
    partner_id = await _partner(container)
    keep = await _subject(container, partner_id, name="Bilal Ahmed")
    gone = await _subject(container, partner_id)
    await container.protection.erase_subject(ACTOR, gone, reason="customer request")
    details = await container.protection.reveal(gone, partner_id=partner_id)
    assert details.erased and details.name is None and details.iban is None
    assert (await container.protection.reveal(keep, partner_id=partner_id)).name == "Bilal Ahmed"
    assert await container.protection.find("iban", IBAN, partner_id=partner_id) != []
    assert all(
        r.id != gone for r in await container.protection.find("iban", IBAN, partner_id=partner_id)
    )
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        row = (await conn.execute(sa.select(data_subjects).where(data_subjects.c.id == gone))).one()
        key = (await conn.execute(sa.select(data_keys).where(data_keys.c.id == row.key_id))).one()
        actions = await conn.execute(sa.select(audit_log.c.action, audit_log.c.target_id))
        audit_rows = actions.all()
    assert row.name_enc is not None, "the row stays for accounting"
    assert key.wrapped_key is None and key.status == "shredded"
    assert ("data_subject.erased", gone) in audit_rows
    # Even a process that never saw the key cannot read the old ciphertext now.
    container.protection.cipher.forget(row.key_id)
    with pytest.raises(KeyUnavailable):
        await container.protection.cipher.decrypt(
            row.name_enc, context=FieldContext("data_subjects", "name_enc", gone)
        )


async def test_rotation_reencrypts_everything_and_retires_the_old_key(
    container: Container, clock: FrozenClock
) -> None:
    partner_id = await _partner(container)
    subjects = [await _subject(container, partner_id) for _ in range(5)]
    created = await container.operators.create_operator(
        ACTOR,
        email="ops@bank.pk",
        name="Ops",
        roles=["operations"],
        password="correct horse battery",
    )
    old_key = await container.protection.active_fields_key()
    new_key, previous = await container.protection.rotate_data_key(ACTOR)
    assert previous == [old_key]
    status, _ = await container.protection.status()
    old_rows = next(s for s in status if s.key.id == old_key).total
    assert old_rows == 6  # five subject keys + one TOTP secret

    # Resumable: one small batch, then the rest.
    first = await container.protection.reencrypt(ACTOR, batch_size=2, max_batches=1)
    assert sum(first.values()) == 2
    assert await container.protection.retire_unused(ACTOR) == []
    await container.protection.reencrypt(ACTOR, batch_size=2)
    # Emptied, but another process may still seal under the old key for a while.
    assert await container.protection.retire_unused(ACTOR) == []
    clock.advance(seconds=2 * ACTIVE_KEY_MAX_AGE.total_seconds())
    assert await container.protection.retire_unused(ACTOR) == [old_key]

    status, subject_keys = await container.protection.status()
    by_id = {s.key.id: s for s in status}
    assert by_id[old_key].key.status == "retired" and by_id[old_key].total == 0
    assert by_id[new_key.id].total == 6
    assert subject_keys == {"active": 5}
    for cached in (old_key, *subjects):
        container.protection.cipher.forget(cached)
    for subject_id in subjects:
        assert (await container.protection.reveal(subject_id, partner_id=partner_id)).iban == IBAN
    login_secret = created.totp_secret
    async with container.db.read() as conn:
        stored = (await conn.execute(sa.select(operators.c.totp_secret))).scalar_one()
    assert stored.startswith(f"v1.{new_key.id}.") and login_secret not in stored


@pytest.mark.skipif(TEST_DB != "sqlite", reason="reads the SQLite file itself")
async def test_sqlite_file_holds_no_personal_data(container: Container) -> None:
    partner_id = await _partner(container)
    await _subject(container, partner_id)
    created = await container.operators.create_operator(
        ACTOR,
        email="ops@bank.pk",
        name="Ops",
        roles=["operations"],
        password="correct horse battery",
    )
    path = Path(container.settings.database.url.split(":///", 1)[1])
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for clear in (NAME, IBAN, "3001234567", "3520212345673", created.totp_secret):
        assert clear.encode() not in raw, clear


async def test_vault_transit_adapter_speaks_the_transit_api() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    def vault(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Vault-Token"] == "s.token"
        body = json.loads(request.content)
        seen.append((request.url.path, body))
        if request.url.path.endswith("/encrypt/amanat"):
            blob = base64.b64encode(
                b"ctx="
                + base64.b64decode(body["context"])
                + b"|"
                + base64.b64decode(body["plaintext"])
            ).decode()
            return httpx.Response(200, json={"data": {"ciphertext": f"vault:v1:{blob}"}})
        if request.url.path.endswith("/decrypt/amanat"):
            raw = base64.b64decode(body["ciphertext"].removeprefix("vault:v1:"))
            context, _, plain = raw.partition(b"|")
            if context != b"ctx=" + base64.b64decode(body["context"]):
                return httpx.Response(400, json={"errors": ["context mismatch"]})
            return httpx.Response(
                200, json={"data": {"plaintext": base64.b64encode(plain).decode()}}
            )
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(vault)) as http:
        master = VaultTransitMasterKey(
            http, address="https://vault.bank.pk:8200", token="s.token", key_name="amanat"
        )
        wrapped = await master.wrap(b"k" * 32, "data-key:dk_1")
        assert wrapped.startswith("vault:v1:")
        assert await master.unwrap(wrapped, "data-key:dk_1") == b"k" * 32
        with pytest.raises(MasterKeyError):
            await master.unwrap(wrapped, "data-key:dk_2")
    assert seen[0][0] == "/v1/transit/encrypt/amanat"


async def test_local_master_key_file_is_created_private_and_refuses_garbage(
    tmp_path: Path,
) -> None:
    key, created = LocalMasterKey.from_file(tmp_path / "master.key", create=True)
    assert created and (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    again, created_again = LocalMasterKey.from_file(tmp_path / "master.key", create=True)
    assert not created_again and again.key_id == key.key_id
    wrapped = await key.wrap(b"x" * 32, "data-key:a")
    with pytest.raises(MasterKeyError):
        await key.unwrap(wrapped, "data-key:b")
    with pytest.raises(MasterKeyError):
        LocalMasterKey.from_base64("bm90IDMyIGJ5dGVz")
