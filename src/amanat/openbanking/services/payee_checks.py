"""Confirmation of payee for partners and TPPs: before paying an IBAN or a Raast ID, ask
whether the name they expect is the account's title (domain/payee.py).

The title comes from the bank's core system when the account is at this bank, and from
the rail's title fetch otherwise; when neither knows the account (or the rail cannot be
reached) the answer is ``unavailable``, never a guess. A check is a
question about a person's account, so each is an audit record (who asked about which
masked identifier, and the verdict), and the edge rate-limits them per client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from amanat.kernel.clock import Clock
from amanat.kernel.ids import new_id
from amanat.kernel.masking import mask_iban, mask_phone
from amanat.kernel.pakistan import parse_iban, parse_raast_id
from amanat.openbanking.domain.payee import PayeeAnswer, Verdict, compare
from amanat.openbanking.ports import BlindIndexer, CoreBanking, OpenBankingTx
from amanat.payments.rail import RailAdapter, RailError
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory


@dataclass(frozen=True, slots=True)
class PayeeCheck:
    id: str
    answer: PayeeAnswer
    checked_at: datetime


# How long a check counts for a partner whose payouts require one, and which verdicts do.
RECENT = timedelta(hours=24)
CONFIRMING = (Verdict.MATCH.value, Verdict.CLOSE_MATCH.value)


class PayeeCheckService:
    def __init__(
        self,
        transactions: TransactionFactory[OpenBankingTx],
        clock: Clock,
        bank: CoreBanking,
        indexer: BlindIndexer,
        rail: RailAdapter,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._bank = bank
        self._indexer = indexer
        self._rail = rail

    async def confirmed_recently(self, partner_id: str, field: str, value: str) -> bool:
        """Whether the partner checked this account (``iban`` or ``raast_id``) in the last
        :data:`RECENT`, and heard a match or a close match (payments' PayeeCheckRecords)."""
        bidx = await self._indexer.blind_index_of(field, value)
        async with self._tx.lookup() as tx:
            return await tx.payee_checks.confirmed_since(
                partner_id, bidx, self._clock.now() - RECENT, CONFIRMING
            )

    async def check(
        self,
        actor: Actor,
        partner_id: str,
        *,
        iban: str | None,
        raast_id: str | None,
        name: str,
    ) -> PayeeCheck:
        """``iban`` or ``raast_id`` (one of them); raises InvalidInput when malformed."""
        iban_value = parse_iban(iban).value if iban else None
        raast_value = parse_raast_id(raast_id).value if raast_id and not iban else None
        title = await self._bank.account_title(iban=iban_value, raast_id=raast_value)
        if title is None:
            # Not at this bank: ask the rail's title fetch, and say "unavailable" rather
            # than guess when it cannot answer.
            try:
                title = await self._rail.account_title(iban=iban_value, raast_id=raast_value)
            except RailError:
                title = None
        answer = compare(name, title) if title is not None else PayeeAnswer(Verdict.UNAVAILABLE)
        result = PayeeCheck(new_id("payee_check"), answer, self._clock.now())
        masked = mask_iban(iban_value) if iban_value else mask_phone(raast_value or "")
        bidx = await self._indexer.blind_index_of(
            "iban" if iban_value else "raast_id", iban_value or raast_value or ""
        )
        async with self._tx.write() as tx:
            await tx.payee_checks.add(
                result.id, partner_id, bidx, answer.verdict.value, result.checked_at
            )
            await audit.record(
                tx,
                self._clock,
                actor,
                "payee.checked",
                target_type="partner",
                target_id=partner_id,
                payload={
                    "payee_check_id": result.id,
                    "account": masked,
                    "result": answer.verdict.value,
                },
            )
        return result
