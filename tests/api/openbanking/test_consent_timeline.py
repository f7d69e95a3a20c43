"""A consent's timeline and a PISP payment's link to it: the consent created by the TPP,
authorised by the PSU (with the audited decision, who and under which request), consumed
by the payment initiated under it; the payment's own timeline names its consent. Support
finds consents by id and by partner."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support.oauth import RegisteredClient, bearer
from tests.support.open_banking import (
    _SIGNING_KEYS,
    authorise,
    domestic_initiation,
    make_signing_tpp,
    pisp,
    seed_bank,
)

from amanat.bootstrap import Container
from amanat.platform.search import SearchService
from amanat.platform.timeline import TimelineService

RISK = {"PaymentContextCode": "PartyToParty"}


@pytest.fixture
async def tpp(container: Container) -> AsyncIterator[RegisteredClient]:
    await seed_bank(container)
    yield await make_signing_tpp(container)
    # make_signing_tpp signs with this test's frozen clock from now on, process-wide: the
    # tests after this one that sign at the real time (OBIE conformance) must not.
    _SIGNING_KEYS.pop("clock", None)


async def test_a_consent_and_its_payment_link_to_each_other(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    initiation = domestic_initiation("1500.00")
    setup = await bearer(client, tpp, scope="payments")
    created = await pisp(
        client,
        tpp,
        "POST",
        "/domestic-payment-consents",
        setup,
        {"Data": {"Initiation": initiation}, "Risk": RISK},
        idempotency_key="consent-1",
    )
    assert created.status_code == 201, created.text
    consent_id = created.json()["Data"]["ConsentId"]
    tokens = await authorise(client, tpp, consent_id, scope="payments", accounts=1)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    body = {"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": RISK}
    paid = await pisp(client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="p-1")
    assert paid.status_code == 201, paid.text
    payment_id = paid.json()["Data"]["DomesticPaymentId"]
    timelines = container.get(TimelineService)

    consent = (await timelines.timeline(consent_id)).entries
    mine = [e.title for e in consent if e.source == "consent"]
    assert mine == [
        "domestic payment consent created",
        "consent consumed (used for its payment)",
        f"used: payment {payment_id} initiated",
    ]
    requests = [e for e in consent if e.source == "api"]
    assert [e.title for e in requests] == [
        "POST /open-banking/v3.1/pisp/domestic-payment-consents (Idempotency-Key obie:consent-1)"
        " → 201"
    ]
    assert requests[0].request_id is not None
    audited = [e.title for e in consent if e.source == "audit"]
    assert audited == ["consent.created", "consent.authorised", "consent.consumed"]
    first = next(e for e in consent if e.source == "consent")
    assert first.actor == f"client {tpp.id}" and first.facts["kind"] == "domestic_payment"
    decided = next(e for e in consent if e.title == "consent.authorised")
    assert decided.source == "audit" and decided.actor.startswith("psu ")
    assert [e.at for e in consent] == sorted(e.at for e in consent)

    payment = (await timelines.timeline(payment_id)).entries
    link = next(e for e in payment if e.source == "consent")
    assert link.title == f"initiated through open banking under consent {consent_id}"
    assert link.subject_id == consent_id
    assert any(e.title == "payout created (pending)" for e in payment)
    assert any(
        e.source == "api" and e.title.startswith("POST /open-banking/v3.1/pisp/domestic-payments ")
        for e in payment
    )

    search = container.get(SearchService)
    [by_id] = (await search.search(consent_id)).hits
    assert (by_id.kind, by_id.status, by_id.partner_id) == ("consent", "Consumed", tpp.partner.id)
    by_partner = (await search.search(tpp.partner.id)).hits
    assert consent_id in [h.id for h in by_partner] and payment_id in [h.id for h in by_partner]
