"""Identity's part of the app: its tables, stores, services and the operator API."""

from __future__ import annotations

from amanat.identity import problems, tables
from amanat.identity.adapters.client_secrets import ClientSecretHasher
from amanat.identity.adapters.passwords import Argon2Hasher
from amanat.identity.queries import IdentityQueries
from amanat.identity.routes import operator_api
from amanat.identity.services.operators import OperatorService
from amanat.identity.services.partners import PartnerService
from amanat.identity.store import (
    OperatorSessionRows,
    SqlOperatorRepository,
    SqlPartnerRepository,
)
from amanat.platform.protection.ports import EncryptedColumn
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.ratelimit.limiter import LimiterLockout, RateLimiter
from amanat.platform.registry import Registry, Services


def _operators(s: Services) -> OperatorService:
    limiter = s.get(RateLimiter)
    return OperatorService(
        s.transactions,
        s.clock,
        s.get(Argon2Hasher),
        s.get(DataProtectionService),
        sign_in_lockout=LimiterLockout(limiter),
        email_failures=LimiterLockout(limiter, "login_email_failures"),
    )


def include(registry: Registry) -> None:
    registry.add_problems(*problems.PROBLEMS)
    registry.add_tables(tables.TABLES)
    registry.add_encrypted_columns(EncryptedColumn("operators", "id", "totp_secret"))
    registry.add_repository("partners", SqlPartnerRepository)
    registry.add_repository("operators", SqlOperatorRepository)
    registry.add_retention_class("operator_sessions", OperatorSessionRows)
    registry.provide(Argon2Hasher, lambda s: Argon2Hasher())
    registry.provide(ClientSecretHasher, lambda s: ClientSecretHasher(s.get(Argon2Hasher)))
    registry.provide(
        PartnerService,
        lambda s: PartnerService(s.transactions, s.clock, s.get(ClientSecretHasher)),
    )
    registry.provide(OperatorService, _operators)
    registry.provide(IdentityQueries, lambda s: IdentityQueries(s.transactions))
    registry.add_routes(operator_api.public, operator_api.router)
