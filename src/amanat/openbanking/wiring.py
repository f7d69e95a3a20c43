"""Open banking's part of the app: consents, the PSU's hosted authorisation, account
information over the CoreBanking port (the sandbox bank here), and the job that ends
expired and stale consents."""

from __future__ import annotations

from datetime import timedelta

from amanat.auth.adapters.tokens import KeyRing
from amanat.auth.service import OAuthService
from amanat.openbanking import problems, tables
from amanat.openbanking.adapters.jws import MessageSignatures
from amanat.openbanking.adapters.sandbox_bank import SandboxBank, SandboxBankRows
from amanat.openbanking.jobs import ReturnFunds
from amanat.openbanking.ports import CoreBanking, MessageSigner
from amanat.openbanking.routes import (
    account_access,
    funds_confirmation,
    obie,
    payee_checks,
    payment_initiation,
    psu_dashboard,
    psu_pages,
)
from amanat.openbanking.services.accounts import AccountInformationService
from amanat.openbanking.services.authorisation import AuthorisationService
from amanat.openbanking.services.consents import ConsentService
from amanat.openbanking.services.funds import FundsConfirmationService
from amanat.openbanking.services.payee_checks import PayeeCheckService
from amanat.openbanking.services.payments import RETURN_FUNDS, PaymentInitiationService
from amanat.openbanking.store import (
    SqlConsentRepository,
    SqlInitiatedPaymentRepository,
    SqlPayeeCheckRepository,
    SqlWalkRepository,
)
from amanat.openbanking.timeline import ConsentSearch, OpenBankingTimeline
from amanat.openbanking.timeline_store import SqlOpenBankingHistory
from amanat.payments.domain.events import PaymentChanged
from amanat.payments.ports import PayeeCheckRecords
from amanat.payments.rail import RailAdapter
from amanat.payments.service import PaymentService
from amanat.platform.protection.ports import EncryptedColumn
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.ratelimit.limiter import LimiterLockout, RateLimiter
from amanat.platform.registry import PeriodicJob, Registry, Services


def _sandbox_bank(s: Services) -> SandboxBank:
    return SandboxBank(s.transactions, s.get(DataProtectionService), s.clock)


def _end_consents(s: Services) -> PeriodicJob:
    service, walks = s.get(ConsentService), s.get(AuthorisationService)

    async def run() -> str:
        ended = await service.end_due()
        purged = await walks.purge_ended()
        return f"ended {ended} consents, forgot {purged} ended authorisation walks"

    return PeriodicJob("openbanking.end_consents", timedelta(minutes=1), run)


def include(registry: Registry) -> None:
    registry.add_problems(*problems.PROBLEMS)
    registry.add_tables(tables.TABLES)
    registry.add_encrypted_columns(
        EncryptedColumn("consents", "id", "details"),
        EncryptedColumn("bank_customers", "id", "name"),
        EncryptedColumn("bank_customers", "id", "cnic"),
        EncryptedColumn("bank_customers", "id", "mobile"),
        EncryptedColumn("bank_accounts", "id", "iban"),
        EncryptedColumn("bank_accounts", "id", "raast_id"),
        EncryptedColumn("bank_accounts", "id", "title"),
        EncryptedColumn("bank_transactions", "id", "description"),
        EncryptedColumn("bank_transactions", "id", "counterparty"),
    )
    registry.add_repository("consents", SqlConsentRepository)
    registry.add_repository("psu_walks", SqlWalkRepository)
    registry.add_repository("payee_checks", SqlPayeeCheckRepository)
    registry.add_repository("initiated_payments", SqlInitiatedPaymentRepository)
    registry.add_repository("sandbox_bank", SandboxBankRows)
    registry.add_repository("openbanking_history", SqlOpenBankingHistory)
    registry.add_timeline_source(lambda s: OpenBankingTimeline(s.transactions))
    registry.add_search_source(lambda s: ConsentSearch(s.transactions))
    registry.provide(SandboxBank, _sandbox_bank)
    registry.provide(
        MessageSigner,
        lambda s: MessageSignatures(
            s.get(KeyRing), s.http, s.clock, s.get(OAuthService).config.issuer
        ),
    )
    registry.provide(CoreBanking, lambda s: s.get(SandboxBank))
    registry.provide(
        ConsentService,
        lambda s: ConsentService(
            s.transactions, s.clock, s.get(DataProtectionService), s.get(OAuthService)
        ),
    )
    registry.provide(
        PaymentInitiationService,
        lambda s: PaymentInitiationService(
            s.transactions,
            s.clock,
            s.get(CoreBanking),
            s.get(PaymentService),
            s.get(ConsentService),
        ),
    )
    registry.provide(
        PayeeCheckService,
        lambda s: PayeeCheckService(
            s.transactions,
            s.clock,
            s.get(CoreBanking),
            s.get(DataProtectionService),
            s.get(RailAdapter),
        ),
    )
    registry.provide(PayeeCheckRecords, lambda s: s.get(PayeeCheckService))
    registry.provide(
        FundsConfirmationService,
        lambda s: FundsConfirmationService(s.transactions, s.clock, s.get(CoreBanking)),
    )
    registry.provide(
        AccountInformationService, lambda s: AccountInformationService(s.get(CoreBanking))
    )
    registry.provide(
        AuthorisationService,
        lambda s: AuthorisationService(
            s.transactions,
            s.clock,
            s.get(CoreBanking),
            s.get(OAuthService),
            s.get(ConsentService),
            customer_guard=LimiterLockout(s.get(RateLimiter), "psu_sign_in_failures"),
            address_guard=LimiterLockout(s.get(RateLimiter), "psu_sign_in_failures_ip"),
        ),
    )
    registry.add_routes(
        account_access.router,
        payment_initiation.router,
        funds_confirmation.router,
        psu_pages.router,
        psu_dashboard.router,
        payee_checks.router,
    )
    registry.add_refusal_renderer(f"{obie.BASE_PATH}/", obie.edge_refusal)
    registry.add_periodic(_end_consents)
    registry.add_job(RETURN_FUNDS, lambda s: ReturnFunds(s.get(PaymentInitiationService)))
    registry.subscribe(PaymentChanged, lambda s: s.get(PaymentInitiationService).on_payment_changed)
