"""Open banking's services over fakes: the PSU's walk, consent changes and their trail."""

from __future__ import annotations

from datetime import timedelta

import pytest

from amanat.kernel.clock import FrozenClock
from amanat.openbanking.domain.authorisation import MAX_FAILURES, WalkError
from amanat.openbanking.domain.consents import ConsentKind, ConsentStatus
from amanat.openbanking.errors import (
    ConsentMismatch,
    ConsentStateConflict,
    FieldInvalid,
    InvalidConsentStatus,
    ResourceNotFound,
)
from amanat.openbanking.fakes import (
    PASSWORD,
    FakeCodeIssuer,
    FakeCoreBanking,
    FakeGuard,
    FakeOpenBankingTx,
    FakeSealer,
    FakeTokenRevoker,
    InMemoryConsents,
    open_banking_database,
)
from amanat.openbanking.services.authorisation import (
    AskCode,
    AskDecision,
    AuthorisationService,
    Finish,
    Retry,
    WalkRequest,
)
from amanat.openbanking.services.consents import BoundToken, ConsentService, Tpp
from amanat.platform.audit.domain import Actor
from amanat.platform.fakes import FakeTransactions

TPP = Tpp(partner_id="ptr_1", client_id="cli_1")
CLIENT = Actor(type="client", id="cli_1")
PSU = Actor(type="psu", id="unknown", source_ip="203.0.113.9", user_agent="Firefox")


class World:
    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.database = open_banking_database()
        self.tx = FakeTransactions(self.database, FakeOpenBankingTx)
        self.bank = FakeCoreBanking()
        self.codes = FakeCodeIssuer()
        self.tokens = FakeTokenRevoker()
        self.consents = ConsentService(self.tx, self.clock, FakeSealer(), self.tokens)
        self.customer_guard = FakeGuard(limit=10)
        self.address_guard = FakeGuard(limit=50)
        self.walks = AuthorisationService(
            self.tx,
            self.clock,
            self.bank,
            self.codes,
            self.consents,
            customer_guard=self.customer_guard,
            address_guard=self.address_guard,
        )

    @property
    def stored(self) -> InMemoryConsents:
        return self.database.store("consents", InMemoryConsents)

    def actions(self) -> list[str]:
        return self.database.audit_log.actions

    async def consent(self) -> str:
        made = await self.consents.create_account_access(
            TPP,
            CLIENT,
            permissions=["ReadAccountsDetail", "ReadBalances"],
            expires_at=None,
            transactions_from=None,
            transactions_to=None,
        )
        return made.id

    async def walk(self, consent_id: str, scope: str = "accounts") -> tuple[str, str]:
        started = await self.walks.start(
            WalkRequest(consent_id, "cli_1", "http://127.0.0.1/cb", scope, "st", "challenge")
        )
        return started.walk.id, started.secret

    async def to_decision(self, consent_id: str) -> tuple[str, str]:
        walk_id, secret = await self.walk(consent_id)
        asked = await self.walks.sign_in(walk_id, secret, "ayesha", PASSWORD, PSU)
        assert isinstance(asked, AskCode)
        decision = await self.walks.verify_code(walk_id, secret, asked.code, PSU)
        assert isinstance(decision, AskDecision)
        assert [a.id for a in decision.accounts] == ["acc_a1", "acc_a2"]
        return walk_id, secret


async def test_approval_issues_a_code_bound_to_the_consent_and_authorises_it() -> None:
    world = World()
    consent_id = await world.consent()
    walk_id, secret = await world.to_decision(consent_id)
    done = await world.walks.decide(
        walk_id, secret, approve=True, account_ids=["acc_a2"], actor=PSU, device="d"
    )
    assert isinstance(done, Finish) and done.code == "code-1" and done.state == "st"
    assert world.codes.issued == [
        {"client_id": "cli_1", "subject": "cu_a", "consent_id": consent_id, "scope": "accounts"}
    ]
    consent = (await world.stored.get(consent_id))[0]  # type: ignore[index]
    assert consent.status is ConsentStatus.AUTHORISED
    assert consent.account_ids == ("acc_a2",) and consent.psu_id == "cu_a"
    assert world.actions() == ["consent.created", "consent.authorised"]
    usable = await world.consents.usable_for(
        BoundToken("cli_1", consent_id, "cu_a"), ConsentKind.ACCOUNT_ACCESS
    )
    assert usable.id == consent_id
    with pytest.raises(ConsentMismatch):
        await world.consents.usable_for(
            BoundToken("cli_1", consent_id, "cu_b"), ConsentKind.ACCOUNT_ACCESS
        )
    with pytest.raises(ConsentMismatch):
        await world.consents.usable_for(
            BoundToken("cli_2", consent_id, "cu_a"), ConsentKind.ACCOUNT_ACCESS
        )


async def test_someone_elses_account_cannot_be_slipped_into_the_approval() -> None:
    world = World()
    consent_id = await world.consent()
    walk_id, secret = await world.to_decision(consent_id)
    with world.database.unchanged():
        refused = await world.walks.decide(
            walk_id, secret, approve=True, account_ids=["acc_a1", "acc_b1"], actor=PSU, device=None
        )
    assert isinstance(refused, Retry) and refused.reason == "choose_accounts"
    assert world.codes.issued == []


async def test_denial_rejects_the_consent_and_issues_nothing() -> None:
    world = World()
    consent_id = await world.consent()
    walk_id, secret = await world.to_decision(consent_id)
    done = await world.walks.decide(
        walk_id, secret, approve=False, account_ids=[], actor=PSU, device=None
    )
    assert isinstance(done, Finish) and done.error == "access_denied" and done.code is None
    assert world.codes.issued == []
    consent = (await world.stored.get(consent_id))[0]  # type: ignore[index]
    assert consent.status is ConsentStatus.REJECTED and consent.ended_reason == "psu_denied"
    with pytest.raises(WalkError):
        await world.walks.decide(
            walk_id, secret, approve=True, account_ids=["acc_a1"], actor=PSU, device=None
        )


async def test_too_many_failures_end_the_walk_but_not_the_consent() -> None:
    # Failing on purpose must not let whoever holds the link reject someone's consent.
    world = World()
    consent_id = await world.consent()
    walk_id, secret = await world.walk(consent_id)
    wrong = await world.walks.sign_in(walk_id, secret, "ayesha", "guess-1", PSU)
    assert isinstance(wrong, Retry)
    asked = await world.walks.sign_in(walk_id, secret, "ayesha", PASSWORD, PSU)
    assert isinstance(asked, AskCode)
    bad_code = "000000" if asked.code != "000000" else "111111"
    for _ in range(MAX_FAILURES - 2):  # the password's failure counts too
        outcome = await world.walks.verify_code(walk_id, secret, bad_code, PSU)
        assert isinstance(outcome, Retry) and outcome.reason == "wrong_code"
    last = await world.walks.verify_code(walk_id, secret, bad_code, PSU)
    assert isinstance(last, Finish) and last.error == "access_denied"
    consent = (await world.stored.get(consent_id))[0]  # type: ignore[index]
    assert consent.status is ConsentStatus.AWAITING_AUTHORISATION
    assert "psu.authentication_failed" in world.actions()
    with pytest.raises(WalkError):  # the right code is no use any more
        await world.walks.verify_code(walk_id, secret, asked.code, PSU)


async def test_a_guesser_starting_new_walks_is_stopped_per_customer() -> None:
    world = World()
    consent_id = await world.consent()
    for _ in range(5):
        walk_id, secret = await world.walk(consent_id)
        for _ in range(2):
            await world.walks.sign_in(walk_id, secret, "ayesha", "guess", PSU)
    walk_id, secret = await world.walk(consent_id)
    refused = await world.walks.sign_in(walk_id, secret, "ayesha", PASSWORD, PSU)
    assert isinstance(refused, Retry) and refused.reason == "locked"
    other = await world.walks.sign_in(walk_id, secret, "bilal", PASSWORD, PSU)
    assert isinstance(other, AskCode)  # a lockout is per customer, not for everyone


async def test_a_stale_code_and_a_wrong_secret_do_not_pass() -> None:
    world = World()
    consent_id = await world.consent()
    walk_id, secret = await world.walk(consent_id)
    with pytest.raises(WalkError):
        await world.walks.sign_in(walk_id, "not-the-cookie", "ayesha", PASSWORD, PSU)
    wrong = await world.walks.sign_in(walk_id, secret, "ayesha", "guess", PSU)
    assert isinstance(wrong, Retry) and wrong.reason == "wrong_credentials"
    asked = await world.walks.sign_in(walk_id, secret, "ayesha", PASSWORD, PSU)
    assert isinstance(asked, AskCode)
    world.clock.advance(minutes=6)
    late = await world.walks.verify_code(walk_id, secret, asked.code, PSU)
    assert isinstance(late, Retry) and late.reason == "code_expired"
    again = await world.walks.resend_code(walk_id, secret)
    assert isinstance(await world.walks.verify_code(walk_id, secret, again.code, PSU), AskDecision)


async def test_a_walk_only_starts_for_its_clients_awaiting_consent_with_its_scope() -> None:
    world = World()
    consent_id = await world.consent()
    with pytest.raises(ConsentStateConflict):
        await world.walk(consent_id, scope="payments")
    with pytest.raises(ResourceNotFound):
        await world.walks.start(
            WalkRequest(consent_id, "cli_other", "http://127.0.0.1/cb", "accounts", None, "c")
        )
    walk_id, secret = await world.to_decision(consent_id)
    await world.walks.decide(
        walk_id, secret, approve=True, account_ids=["acc_a1"], actor=PSU, device=None
    )
    with pytest.raises(ConsentStateConflict):
        await world.walk(consent_id)  # authorised already: no second authorisation


async def test_withdrawal_and_deletion_revoke_at_once_and_are_audited() -> None:
    world = World()
    consent_id = await world.consent()
    walk_id, secret = await world.to_decision(consent_id)
    await world.walks.decide(
        walk_id, secret, approve=True, account_ids=["acc_a1"], actor=PSU, device=None
    )
    token = BoundToken("cli_1", consent_id, "cu_a")
    with pytest.raises(ResourceNotFound):
        await world.consents.withdraw("cu_b", consent_id, PSU)  # not Bilal's to withdraw
    await world.consents.withdraw("cu_a", consent_id, PSU)
    with pytest.raises(InvalidConsentStatus):
        await world.consents.usable_for(token, ConsentKind.ACCOUNT_ACCESS)
    await world.consents.delete(TPP, consent_id, ConsentKind.ACCOUNT_ACCESS, CLIENT)  # no-op
    assert world.actions().count("consent.revoked") == 1
    assert world.tokens.revoked == [(consent_id, "psu_withdrawn")]


async def test_expiry_is_immediate_and_the_job_records_it_once() -> None:
    world = World()
    made = await world.consents.create_account_access(
        TPP,
        CLIENT,
        permissions=["ReadBalances"],
        expires_at=world.clock.now() + timedelta(minutes=30),
        transactions_from=None,
        transactions_to=None,
    )
    walk_id, secret = await world.to_decision(made.id)
    await world.walks.decide(
        walk_id, secret, approve=True, account_ids=["acc_a1"], actor=PSU, device=None
    )
    world.clock.advance(minutes=31)
    with pytest.raises(InvalidConsentStatus):
        await world.consents.usable_for(
            BoundToken("cli_1", made.id, "cu_a"), ConsentKind.ACCOUNT_ACCESS
        )
    stale = await world.consent()
    world.clock.advance(hours=2)
    assert await world.consents.end_due() == 2
    assert await world.consents.end_due() == 0
    assert (await world.stored.get(stale))[0].status is ConsentStatus.REJECTED  # type: ignore[index]
    assert world.actions().count("consent.expired") == 1
    assert world.actions().count("consent.rejected") == 1


async def test_a_bad_request_changes_nothing() -> None:
    world = World()
    with world.database.unchanged(), pytest.raises(FieldInvalid) as refused:
        await world.consents.create_account_access(
            TPP,
            CLIENT,
            permissions=["ReadTransactionsBasic"],
            expires_at=None,
            transactions_from=None,
            transactions_to=None,
        )
    assert refused.value.path == "Data.Permissions"


async def test_a_payee_at_another_bank_is_checked_through_the_rails_title_fetch() -> None:
    from amanat.openbanking.services.payee_checks import PayeeCheckService
    from amanat.payments.fakes import FakeRail
    from amanat.payments.rail import RailUnavailable

    class Indexer:
        async def blind_index_of(self, kind: str, value: str) -> str:
            return f"{kind}:{value}"

    world = World()
    rail = FakeRail()
    other_bank = "PK66HABB0000001234567890"
    rail.titles[other_bank] = "SANA QURESHI"
    service = PayeeCheckService(world.tx, world.clock, world.bank, Indexer(), rail)
    close = await service.check(
        CLIENT, "ptr_1", iban=other_bank, raast_id=None, name="Sana Qureshy"
    )
    assert close.answer.verdict.value == "close_match"
    assert close.answer.masked_title == "SA** QU*****"

    class DownRail(FakeRail):
        async def account_title(self, *, iban: str | None, raast_id: str | None) -> str | None:
            raise RailUnavailable("down")

    down = PayeeCheckService(world.tx, world.clock, world.bank, Indexer(), DownRail())
    unknown = await down.check(CLIENT, "ptr_1", iban=other_bank, raast_id=None, name="Sana")
    assert unknown.answer.verdict.value == "unavailable"
