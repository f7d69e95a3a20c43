"""The console's one search box: what an operator typed is classified (a mobile number, a
CNIC, an IBAN, or an id / reference / partner id), a personal identifier becomes data
subjects through the blind index and never reaches a source in clear, every source is
asked, the hits come back merged newest first, and what was searched is described with the
value masked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from amanat.kernel.search import SearchField, SearchHit, SearchQuery
from amanat.platform.protection.ports import SubjectRecord
from amanat.platform.search import SearchService, classify

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "kind", "value", "masked"),
    [
        ("03001234567", "raast_id", "+923001234567", "+92300*****67"),
        ("+923001234567", "raast_id", "+923001234567", "+92300*****67"),
        ("923001234567", "raast_id", "+923001234567", "+92300*****67"),
        ("00923001234567", "raast_id", "+923001234567", "+92300*****67"),
        (" 0300-1234567 ", "raast_id", "+923001234567", "+92300*****67"),
        ("35202-1234567-3", "cnic", "3520212345673", "*****-*******-3"),
        ("3520212345673", "cnic", "3520212345673", "*****-*******-3"),
        ("PK36SCBL0000001123456702", "iban", "PK36SCBL0000001123456702",
         "PK**SCBL************6702"),
        ("pk36 scbl 0000 0011 2345 6702", "iban", "PK36SCBL0000001123456702",
         "PK**SCBL************6702"),
        ("pay_01JD0000000000000000000000", "text", "pay_01JD0000000000000000000000",
         "pay_01JD0000000000000000000000"),
        ("INV-1001", "text", "INV-1001", "INV-1001"),
        ("ptr_01JD0000000000000000000000", "text", "ptr_01JD0000000000000000000000",
         "ptr_01JD0000000000000000000000"),
        # Shaped like an identifier but not a valid one: searched as text, still masked.
        ("PK00SCBL0000001123456702", "text", "PK00SCBL0000001123456702",
         "PK**SCBL************6702"),
        ("0123456789012", "text", "0123456789012", "************2"),
    ],
)  # fmt: skip
def test_classify(typed: str, kind: str, value: str, masked: str) -> None:
    found = classify(typed)
    assert (found.kind, found.value, found.masked) == (kind, value, masked)


def hit(id_: str, minutes: int, kind: str = "payout") -> SearchHit:
    return SearchHit(
        kind=kind,
        id=id_,
        partner_id="ptr_1",
        status="succeeded",
        created_at=T0 + timedelta(minutes=minutes),
    )


@dataclass
class Source:
    name: str
    answers: dict[SearchField, list[SearchHit]]
    asked: list[SearchQuery] = field(default_factory=list)

    async def find(self, query: SearchQuery) -> Sequence[SearchHit]:
        self.asked.append(query)
        return self.answers.get(query.field, [])


@dataclass
class Subjects:
    ids: list[str]
    asked: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def find(self, field: str, value: str, *, partner_id: str | None) -> list[SubjectRecord]:
        self.asked.append((field, value, partner_id))
        return [
            SubjectRecord(
                id=i,
                partner_id="ptr_1",
                key_id="dk_1",
                name_enc=None,
                iban_enc=None,
                raast_id_enc=None,
                cnic_enc=None,
                iban_bidx=None,
                raast_id_bidx=None,
                cnic_bidx=None,
                bank_code=None,
                iban_last4=None,
                created_at=T0,
                erased_at=None,
            )
            for i in self.ids
        ]


async def test_a_phone_number_is_searched_through_the_blind_index_only() -> None:
    payments = Source("payments", {SearchField.SUBJECT: [hit("pay_old", 1), hit("pay_new", 5)]})
    consents = Source("openbanking", {})
    subjects = Subjects(["cus_2", "cus_1"])
    outcome = await SearchService([payments, consents], subjects).search("0300 1234567")

    assert subjects.asked == [("raast_id", "+923001234567", None)]
    assert [q.field for q in payments.asked] == [SearchField.SUBJECT]
    assert payments.asked[0].subject_ids == ("cus_1", "cus_2") and payments.asked[0].value == ""
    assert [h.id for h in outcome.hits] == ["pay_new", "pay_old"]
    assert outcome.described == "phone number (Raast ID) +92300*****67 (2 customer records)"
    assert outcome.subjects == 2


async def test_no_customer_found_asks_no_source() -> None:
    payments = Source("payments", {})
    outcome = await SearchService([payments], Subjects([])).search("35202-1234567-3")
    assert outcome.hits == [] and payments.asked == []
    assert outcome.described == "CNIC *****-*******-3 (0 customer records)"


async def test_text_is_asked_as_id_reference_and_partner_merged_newest_first() -> None:
    payments = Source(
        "payments",
        {
            SearchField.ID: [hit("pay_a", 3)],
            SearchField.REFERENCE: [hit("pay_b", 7), hit("pay_a", 3)],
        },
    )
    consents = Source("openbanking", {SearchField.PARTNER: [hit("cns_c", 9, "consent")]})
    outcome = await SearchService([payments, consents], Subjects([])).search("  X-1 ")

    assert [q.field for q in payments.asked] == [
        SearchField.ID,
        SearchField.REFERENCE,
        SearchField.PARTNER,
    ]
    assert {q.value for q in payments.asked} == {"X-1"}
    assert [h.id for h in outcome.hits] == ["cns_c", "pay_b", "pay_a"], "each hit once"
    assert outcome.described == "a reference or other text of 3 characters"


async def test_the_limit_and_values_no_source_could_hold() -> None:
    payments = Source("payments", {SearchField.ID: [hit(f"pay_{n}", n) for n in range(9)]})
    service = SearchService([payments], Subjects([]))
    assert [h.id for h in (await service.search("p", limit=3)).hits] == [
        "pay_8",
        "pay_7",
        "pay_6",
    ]
    payments.asked.clear()
    assert (await service.search("a\x00b")).hits == [] and payments.asked == []
    assert (await service.search("   ")).hits == [] and payments.asked == []
