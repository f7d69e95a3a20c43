"""In-memory stand-ins for open banking's ports: consents, PSU walks, a two-customer core
bank and the OAuth server's code issuing, so the services' rules are tested in
milliseconds (tests/unit/openbanking/); the SQL stores and the sandbox bank keep the same
promises in tests/api/openbanking on both databases."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from amanat.kernel.pagination import Page
from amanat.kernel.pakistan import make_iban
from amanat.openbanking.domain.authorisation import AuthorisationWalk
from amanat.openbanking.domain.consents import Consent, ConsentStatus
from amanat.openbanking.ports import (
    BankAccount,
    BankBalance,
    BankCustomer,
    BankTransaction,
    InitiatedPayment,
    TransactionQuery,
)
from amanat.platform.fakes import FakeDatabase, FakeTransaction, InMemoryStore


class InMemoryConsents(InMemoryStore):
    def __init__(self) -> None:
        self.rows: dict[str, tuple[Consent, str | None]] = {}

    async def add(self, consent: Consent, sealed_details: str | None) -> None:
        if consent.id in self.rows:
            raise ValueError(f"duplicate consent {consent.id}")
        self.rows[consent.id] = (consent, sealed_details)

    async def get(self, consent_id: str) -> tuple[Consent, str | None] | None:
        return self.rows.get(consent_id)

    async def get_for_update(self, consent_id: str) -> tuple[Consent, str | None] | None:
        return self.rows.get(consent_id)

    async def save(self, consent: Consent) -> bool:
        stored = self.rows.get(consent.id)
        if stored is None or stored[0].version != consent.version - 1:
            return False
        self.rows[consent.id] = (consent, stored[1])
        return True

    async def of_psu(self, psu_id: str, *, limit: int) -> list[Consent]:
        mine = [c for c, _ in self.rows.values() if c.psu_id == psu_id]
        return sorted(mine, key=lambda c: (c.created_at, c.id), reverse=True)[:limit]

    async def due_to_end(self, now: datetime, awaiting_before: datetime, limit: int) -> list[str]:
        due = [
            c.id
            for c, _ in self.rows.values()
            if (c.status is ConsentStatus.AWAITING_AUTHORISATION and c.created_at < awaiting_before)
            or (
                c.status is ConsentStatus.AUTHORISED
                and c.expires_at is not None
                and c.expires_at <= now
            )
        ]
        return due[:limit]


class InMemoryWalks(InMemoryStore):
    def __init__(self) -> None:
        self.rows: dict[str, AuthorisationWalk] = {}

    async def add(self, walk: AuthorisationWalk) -> None:
        self.rows[walk.id] = walk

    async def get_for_update(self, walk_id: str) -> AuthorisationWalk | None:
        return self.rows.get(walk_id)

    async def save(self, walk: AuthorisationWalk) -> None:
        self.rows[walk.id] = walk

    async def delete_ended(self, before: datetime) -> int:
        ended = [k for k, w in self.rows.items() if w.expires_at < before]
        for key in ended:
            del self.rows[key]
        return len(ended)


class InMemoryPayeeChecks(InMemoryStore):
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, datetime]] = []

    async def add(
        self, check_id: str, partner_id: str, account_bidx: str, verdict: str, at: datetime
    ) -> None:
        self.rows.append((check_id, partner_id, account_bidx, verdict, at))

    async def confirmed_since(
        self, partner_id: str, account_bidx: str, since: datetime, verdicts: tuple[str, ...]
    ) -> bool:
        return any(
            p == partner_id and b == account_bidx and at >= since and v in verdicts
            for _id, p, b, v, at in self.rows
        )


class InMemoryInitiatedPayments(InMemoryStore):
    def __init__(self) -> None:
        self.rows: dict[str, InitiatedPayment] = {}

    async def add(self, payment: InitiatedPayment) -> None:
        self.rows[payment.payment_id] = payment

    async def get(self, payment_id: str, *, for_update: bool = False) -> InitiatedPayment | None:
        return self.rows.get(payment_id)

    async def mark_returned(self, payment_id: str, at: datetime) -> None:
        self.rows[payment_id] = replace(self.rows[payment_id], returned_at=at)


class FakeOpenBankingTx(FakeTransaction):
    @property
    def consents(self) -> InMemoryConsents:
        return self.database.store("consents", InMemoryConsents)

    @property
    def psu_walks(self) -> InMemoryWalks:
        return self.database.store("psu_walks", InMemoryWalks)

    @property
    def payee_checks(self) -> InMemoryPayeeChecks:
        return self.database.store("payee_checks", InMemoryPayeeChecks)

    @property
    def initiated_payments(self) -> InMemoryInitiatedPayments:
        return self.database.store("initiated_payments", InMemoryInitiatedPayments)


def open_banking_database() -> FakeDatabase:
    return FakeDatabase(
        consents=InMemoryConsents(),
        psu_walks=InMemoryWalks(),
        payee_checks=InMemoryPayeeChecks(),
        initiated_payments=InMemoryInitiatedPayments(),
    )


PASSWORD = "right-password"
SALARY = "SALARY"  # a bank transaction code


@dataclass
class FakeCoreBanking:
    """Two customers: ``ayesha`` (accounts ``acc_a1``, ``acc_a2``) and ``bilal``
    (``acc_b1``), one transaction each, all signing in with :data:`PASSWORD`."""

    customers: dict[str, BankCustomer] = field(
        default_factory=lambda: {
            "ayesha": BankCustomer("cu_a", "ayesha", "Ayesha Khan", "+923001234567"),
            "bilal": BankCustomer("cu_b", "bilal", "Bilal Ahmed", "+923331234567"),
        }
    )

    def _accounts(self) -> list[BankAccount]:
        def account(account_id: str, owner: str, number: int) -> BankAccount:
            return BankAccount(
                id=account_id,
                customer_id=owner,
                bank_code="SCBL",
                iban=make_iban("SCBL", f"{number:016d}").value,
                title="TITLE",
                currency="PKR",
                account_type="Personal",
                subtype="CurrentAccount",
                nickname=account_id,
                opened_on=date(2020, 1, 1),
                raast_id=None,
            )

        return [
            account("acc_a1", "cu_a", 1),
            account("acc_a2", "cu_a", 2),
            account("acc_b1", "cu_b", 3),
        ]

    async def account_title(self, *, iban: str | None, raast_id: str | None) -> str | None:
        found = [a for a in self._accounts() if a.iban == iban]
        return found[0].title if found else None

    async def sign_in(self, username: str, password: str) -> BankCustomer | None:
        found = self.customers.get(username)
        return found if found is not None and password == PASSWORD else None

    async def customer(self, customer_id: str) -> BankCustomer | None:
        return next((c for c in self.customers.values() if c.id == customer_id), None)

    async def accounts_of(self, customer_id: str) -> list[BankAccount]:
        return [a for a in self._accounts() if a.customer_id == customer_id]

    async def accounts(self, account_ids: tuple[str, ...]) -> list[BankAccount]:
        return [a for a in self._accounts() if a.id in account_ids]

    async def balances(self, account_ids: tuple[str, ...]) -> list[BankBalance]:
        at = datetime(2026, 12, 1)
        return [BankBalance(a, "PKR", 100_00, 100_00, at) for a in account_ids]

    async def transactions(self, query: TransactionQuery) -> Page[BankTransaction]:
        items = [
            BankTransaction(
                id=f"tx_{a}",
                account_id=a,
                booked_at=datetime(2026, 11, 1),
                amount_minor=500_00,
                currency="PKR",
                credit=True,
                code=SALARY,
                description="SALARY",
                merchant_name=None,
                counterparty_name=None,
                counterparty_iban=None,
                balance_after_minor=500_00,
            )
            for a in query.account_ids
        ]
        return Page(items, False)


@dataclass
class FakeGuard:
    """Locks a key out after ``limit`` failures (no window: tests move no time)."""

    limit: int = 10
    failures: dict[str, int] = field(default_factory=dict)

    async def is_locked(self, key: str) -> bool:
        return self.failures.get(key, 0) >= self.limit

    async def record_failure(self, key: str) -> bool:
        self.failures[key] = self.failures.get(key, 0) + 1
        return self.failures[key] >= self.limit


@dataclass
class FakeTokenRevoker:
    revoked: list[tuple[str, str]] = field(default_factory=list)

    async def revoke_consent_tokens(self, consent_id: str, client_id: str, reason: str) -> int:
        self.revoked.append((consent_id, reason))
        return 1


class FakeSealer:
    """Reversible, not secret; a value only opens in the place it was sealed for."""

    async def seal(self, value: str, *, table: str, column: str, row_id: str) -> str:
        return f"sealed:{table}/{column}/{row_id}:{value}"

    async def unseal(self, value: str, *, table: str, column: str, row_id: str) -> str:
        prefix = f"sealed:{table}/{column}/{row_id}:"
        if not value.startswith(prefix):
            raise ValueError("sealed for another place")
        return value[len(prefix) :]


@dataclass
class FakeCodeIssuer:
    """Issues ``code-1``, ``code-2``...; remembers what each was issued for."""

    issued: list[dict[str, str | None]] = field(default_factory=list)

    async def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scope: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        subject: str,
        consent_id: str | None,
    ) -> str:
        self.issued.append(
            {"client_id": client_id, "subject": subject, "consent_id": consent_id, "scope": scope}
        )
        return f"code-{len(self.issued)}"
