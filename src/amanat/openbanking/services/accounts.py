"""Account information under a consent: only the accounts the PSU chose, only the data
clusters the permissions name, only transactions inside the consent's window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from amanat.kernel.pagination import Page
from amanat.openbanking.domain.consents import Consent
from amanat.openbanking.domain.permissions import AccessView
from amanat.openbanking.errors import ConsentMismatch
from amanat.openbanking.ports import (
    BankAccount,
    BankBalance,
    BankTransaction,
    CoreBanking,
    TransactionQuery,
)

PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class TransactionWindow:
    """What a TPP asked for on top of what the consent allows."""

    booked_from: datetime | None = None
    booked_to: datetime | None = None
    after: tuple[datetime, str] | None = None


class AccountInformationService:
    def __init__(self, bank: CoreBanking) -> None:
        self._bank = bank

    @staticmethod
    def _account_ids(consent: Consent, account_id: str | None) -> tuple[str, ...]:
        if account_id is None:
            return consent.account_ids
        if account_id not in consent.account_ids:
            raise ConsentMismatch("This account is not part of the consent.", path="AccountId")
        return (account_id,)

    async def accounts(self, consent: Consent, account_id: str | None = None) -> list[BankAccount]:
        if not AccessView.of(consent.permissions).accounts:
            raise ConsentMismatch("The consent does not grant ReadAccountsBasic or Detail.")
        return await self._bank.accounts(self._account_ids(consent, account_id))

    async def balances(self, consent: Consent, account_id: str | None = None) -> list[BankBalance]:
        if not AccessView.of(consent.permissions).balances:
            raise ConsentMismatch("The consent does not grant ReadBalances.")
        return await self._bank.balances(self._account_ids(consent, account_id))

    async def transactions(
        self, consent: Consent, account_id: str | None, window: TransactionWindow
    ) -> Page[BankTransaction]:
        view = AccessView.of(consent.permissions)
        if not view.transactions:
            raise ConsentMismatch("The consent does not grant ReadTransactionsBasic or Detail.")
        return await self._bank.transactions(
            TransactionQuery(
                account_ids=self._account_ids(consent, account_id),
                booked_from=_latest(consent.transactions_from, window.booked_from),
                booked_to=_earliest(consent.transactions_to, window.booked_to),
                credits=view.credits,
                debits=view.debits,
                after=window.after,
                limit=PAGE_SIZE,
            )
        )


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a is not None and b is not None else a or b


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a is not None and b is not None else a or b
