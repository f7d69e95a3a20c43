"""Who may do what: partner roles grant OAuth scopes; operator roles grant permissions.

These tables are the single source of truth. ``docs/access-control.md`` prints them, and
a test checks that the document and this module agree. There is deliberately no wildcard
or all-access scope: a token can only ever carry scopes from this list that the partner's
roles allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from amanat.kernel.errors import InvalidInput


class PartnerRole(StrEnum):
    MERCHANT = "merchant"
    AISP = "aisp"
    PISP = "pisp"
    CBPII = "cbpii"


SCOPE_DESCRIPTIONS: dict[str, str] = {
    "payments:read": "Read payouts and collections.",
    "payments:write": "Create and cancel payouts and collections.",
    "refunds:write": "Refund collections.",
    "disputes:read": "Read disputes.",
    "disputes:write": "Respond to disputes and upload evidence.",
    "webhooks:manage": "Manage webhook endpoints and deliveries.",
    "events:read": "Read the event log.",
    "settlements:read": "Read settlements and reports.",
    "balance:read": "Read balances.",
    "customers:reveal": "Read a customer's IBAN, Raast ID and CNIC in clear (audited).",
    "payees:check": "Check that a payee's name matches the account before paying it.",
    "accounts": "Open banking: account information (AISP).",
    "payments": "Open banking: payment initiation (PISP).",
    "fundsconfirmations": "Open banking: confirmation of funds (CBPII).",
}

ROLE_SCOPES: dict[PartnerRole, frozenset[str]] = {
    PartnerRole.MERCHANT: frozenset(
        {
            "payments:read",
            "payments:write",
            "refunds:write",
            "disputes:read",
            "disputes:write",
            "webhooks:manage",
            "events:read",
            "settlements:read",
            "balance:read",
            "customers:reveal",
            "payees:check",
        }
    ),
    # Every TPP hears of its consents (consent.authorised, consent.revoked) by webhook.
    PartnerRole.AISP: frozenset({"accounts", "webhooks:manage", "events:read"}),
    PartnerRole.PISP: frozenset({"payments", "payees:check", "webhooks:manage", "events:read"}),
    PartnerRole.CBPII: frozenset({"fundsconfirmations", "webhooks:manage", "events:read"}),
}

# Scopes a client or token only ever holds when asked for by name: never part of the
# default grant when a client is registered or a token requested without ``scope``, so the
# power to read personal identifiers in clear is always a deliberate choice.
OPT_IN_SCOPES = frozenset({"customers:reveal"})

# Open-banking scopes are granted per PSU consent through the authorization-code grant.
CONSENT_SCOPES = frozenset({"accounts", "payments", "fundsconfirmations"})


def parse_roles(values: Iterable[str]) -> frozenset[PartnerRole]:
    roles: set[PartnerRole] = set()
    for value in values:
        try:
            roles.add(PartnerRole(value))
        except ValueError:
            raise InvalidInput(
                f"'{value}' is not a partner role; use one of "
                f"{', '.join(r.value for r in PartnerRole)}.",
                code="invalid_role",
            ) from None
    if not roles:
        raise InvalidInput("A partner needs at least one role.", code="invalid_role")
    return frozenset(roles)


def scopes_for_roles(roles: Iterable[PartnerRole]) -> frozenset[str]:
    allowed: set[str] = set()
    for role in roles:
        allowed |= ROLE_SCOPES[role]
    return frozenset(allowed)


def parse_scope_string(scope: str | None) -> list[str]:
    """RFC 6749 scope: space-delimited tokens, order kept, duplicates dropped."""
    if not scope:
        return []
    seen: dict[str, None] = {}
    for token in scope.split(" "):
        if token:
            seen.setdefault(token, None)
    return list(seen)


def grantable_scopes(requested: list[str], allowed: frozenset[str]) -> list[str]:
    """The scopes to grant, or raise if any requested scope is unknown or not allowed.

    An empty request grants everything the client is allowed (RFC 6749 §3.3 lets the
    server apply a default) except the :data:`OPT_IN_SCOPES`, which is never more than its
    partner's roles allow.
    """
    unknown = [s for s in requested if s not in SCOPE_DESCRIPTIONS]
    if unknown:
        raise InvalidInput(f"Unknown scope(s): {' '.join(unknown)}.", code="invalid_scope")
    refused = [s for s in requested if s not in allowed]
    if refused:
        raise InvalidInput(
            f"Scope(s) not allowed for this client: {' '.join(refused)}.", code="invalid_scope"
        )
    return requested or sorted(allowed - OPT_IN_SCOPES)


class OperatorRole(StrEnum):
    SUPPORT = "support"
    OPERATIONS = "operations"
    RISK = "risk"
    COMPLIANCE = "compliance"
    ADMIN = "admin"
    AUDITOR = "auditor"


class Permission(StrEnum):
    PARTNERS_READ = "partners.read"
    PARTNERS_WRITE = "partners.write"
    CLIENTS_WRITE = "clients.write"
    TOKENS_REVOKE = "tokens.revoke"
    OPERATORS_READ = "operators.read"
    OPERATORS_WRITE = "operators.write"
    AUDIT_READ = "audit.read"
    KEYS_ROTATE = "keys.rotate"
    PAYMENTS_READ = "payments.read"
    PARTNERS_SUSPEND = "partners.suspend"
    RECONCILIATION_READ = "reconciliation.read"
    RECONCILIATION_WRITE = "reconciliation.write"
    PAYMENTS_ENQUIRE = "payments.enquire"
    WEBHOOKS_REDELIVER = "webhooks.redeliver"
    CONSENTS_REVOKE = "consents.revoke"
    DISPUTES_READ = "disputes.read"
    DISPUTES_WRITE = "disputes.write"
    PERSONAL_DATA_REVEAL = "personal_data.reveal"
    ACCESS_LOG_READ = "access_log.read"
    ALERTS_ACKNOWLEDGE = "alerts.acknowledge"


P = Permission
ROLE_PERMISSIONS: dict[OperatorRole, frozenset[Permission]] = {
    # Answers partners' questions: sees, never changes. May reveal a customer's
    # identifiers in clear, one at a time, with a reason that is audited.
    OperatorRole.SUPPORT: frozenset(
        {
            P.PARTNERS_READ,
            P.PAYMENTS_READ,
            P.RECONCILIATION_READ,
            P.DISPUTES_READ,
            P.PERSONAL_DATA_REVEAL,
        }
    ),
    # Onboards partners and manages their credentials.
    # Also imports the bank's and the rail's reports, resolves breaks, closes cycles,
    # runs recovery (status enquiries, webhook redelivery), answers disputes and alerts.
    OperatorRole.OPERATIONS: frozenset(
        {
            P.PARTNERS_READ,
            P.PARTNERS_WRITE,
            P.CLIENTS_WRITE,
            P.TOKENS_REVOKE,
            P.PAYMENTS_READ,
            P.RECONCILIATION_READ,
            P.RECONCILIATION_WRITE,
            P.PAYMENTS_ENQUIRE,
            P.WEBHOOKS_REDELIVER,
            P.DISPUTES_READ,
            P.DISPUTES_WRITE,
            P.ALERTS_ACKNOWLEDGE,
        }
    ),
    # Stops abuse: can suspend a partner and kill its tokens, not onboard.
    OperatorRole.RISK: frozenset(
        {
            P.PARTNERS_READ,
            P.PARTNERS_SUSPEND,
            P.TOKENS_REVOKE,
            P.PAYMENTS_READ,
            P.RECONCILIATION_READ,
            P.CONSENTS_REVOKE,
            P.DISPUTES_READ,
            P.DISPUTES_WRITE,
            P.PERSONAL_DATA_REVEAL,
            P.ALERTS_ACKNOWLEDGE,
        }
    ),
    # Reviews who did what.
    OperatorRole.COMPLIANCE: frozenset(
        {
            P.PARTNERS_READ,
            P.AUDIT_READ,
            P.PAYMENTS_READ,
            P.RECONCILIATION_READ,
            P.DISPUTES_READ,
            P.PERSONAL_DATA_REVEAL,
            P.ACCESS_LOG_READ,
        }
    ),
    # Manages people and platform keys; onboarding stays with operations.
    OperatorRole.ADMIN: frozenset(
        {
            P.PARTNERS_READ,
            P.OPERATORS_READ,
            P.OPERATORS_WRITE,
            P.KEYS_ROTATE,
            P.AUDIT_READ,
            P.TOKENS_REVOKE,
            P.ACCESS_LOG_READ,
        }
    ),
    # External or internal auditor: read-only, including the audit trail.
    OperatorRole.AUDITOR: frozenset(
        {
            P.PARTNERS_READ,
            P.OPERATORS_READ,
            P.AUDIT_READ,
            P.RECONCILIATION_READ,
            P.DISPUTES_READ,
            P.PAYMENTS_READ,
            P.ACCESS_LOG_READ,
        }
    ),
}


def parse_operator_roles(values: Iterable[str]) -> frozenset[OperatorRole]:
    roles: set[OperatorRole] = set()
    for value in values:
        try:
            roles.add(OperatorRole(value))
        except ValueError:
            raise InvalidInput(
                f"'{value}' is not an operator role; use one of "
                f"{', '.join(r.value for r in OperatorRole)}.",
                code="invalid_role",
            ) from None
    if not roles:
        raise InvalidInput("An operator needs at least one role.", code="invalid_role")
    return frozenset(roles)


def permissions_for(roles: Iterable[OperatorRole]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)
