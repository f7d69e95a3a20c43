"""Open banking's tables (SQLAlchemy Core), on the one shared metadata. Migrations must
match these exactly; a test checks.

``consents`` and ``psu_authorisations`` are amanat's own. The ``bank_*`` tables are the
sandbox bank's (adapters/sandbox_bank.py): a stand-in for a bank's core system, reached
only through the CoreBanking port, with every personal field sealed.
"""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("client_id", sa.String(40), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("permissions", sa.JSON, nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("transactions_from", UtcDateTime(), nullable=True),
    sa.Column("transactions_to", UtcDateTime(), nullable=True),
    sa.Column("psu_id", sa.String(40), nullable=True),
    sa.Column("account_ids", sa.JSON, nullable=False),
    sa.Column("details", sa.Text, nullable=True),  # encrypted JSON: payee, amounts
    sa.Column("ended_reason", sa.String(32), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("status_updated_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_consents_psu", consents.c.psu_id, consents.c.created_at)
sa.Index("ix_consents_status_created", consents.c.status, consents.c.created_at)
# Support's search by partner, newest first (openbanking/timeline.py).
sa.Index("ix_consents_partner_created", consents.c.partner_id, consents.c.created_at)

# One PSU's walk through the hosted pages: authorising one consent, or (no consent) signing
# in to the consent dashboard. The browser holds a random secret in a cookie; the row keeps
# only its hash.
psu_authorisations = sa.Table(
    "psu_authorisations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("consent_id", sa.String(40), sa.ForeignKey("consents.id"), nullable=True),
    sa.Column("client_id", sa.String(40), nullable=False),
    sa.Column("redirect_uri", sa.String(2048), nullable=False),
    sa.Column("state", sa.String(512), nullable=True),
    sa.Column("scope", sa.String(256), nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("psu_id", sa.String(40), nullable=True),
    sa.Column("otp_hash", sa.String(64), nullable=True),
    sa.Column("otp_expires_at", UtcDateTime(), nullable=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_psu_authorisations_expires", psu_authorisations.c.expires_at)

bank_customers = sa.Table(
    "bank_customers",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("name", sa.Text, nullable=False),  # encrypted
    sa.Column("cnic", sa.Text, nullable=False),  # encrypted
    sa.Column("mobile", sa.Text, nullable=False),  # encrypted
    sa.Column("city", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

bank_accounts = sa.Table(
    "bank_accounts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(40), sa.ForeignKey("bank_customers.id"), nullable=False),
    sa.Column("bank_code", sa.String(4), nullable=False),
    sa.Column("iban", sa.Text, nullable=False),  # encrypted
    sa.Column("iban_bidx", sa.String(64), nullable=False, unique=True),
    sa.Column("iban_last4", sa.String(4), nullable=False),
    sa.Column("raast_id", sa.Text, nullable=True),  # encrypted
    sa.Column("raast_id_bidx", sa.String(64), nullable=True, unique=True),
    sa.Column("title", sa.Text, nullable=False),  # encrypted
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("account_type", sa.String(16), nullable=False),
    sa.Column("subtype", sa.String(32), nullable=False),
    sa.Column("nickname", sa.String(70), nullable=False),
    sa.Column("opened_on", sa.Date, nullable=False),
    sa.Column("booked_minor", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_bank_accounts_customer", bank_accounts.c.customer_id)

bank_transactions = sa.Table(
    "bank_transactions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("bank_accounts.id"), nullable=False),
    sa.Column("booked_at", UtcDateTime(), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("credit", sa.Boolean, nullable=False),
    sa.Column("code", sa.String(24), nullable=False),
    sa.Column("description", sa.Text, nullable=False),  # encrypted: names people
    sa.Column("merchant_name", sa.String(140), nullable=True),
    sa.Column("counterparty", sa.Text, nullable=True),  # encrypted JSON: name, IBAN
    sa.Column("balance_after_minor", sa.BigInteger, nullable=False),
)
sa.Index(
    "ix_bank_transactions_account_booked",
    bank_transactions.c.account_id,
    bank_transactions.c.booked_at,
    bank_transactions.c.id,
)

# One row per confirmation of payee: whether a partner checked an account lately (for
# partners whose payouts require it). The account is kept as its blind index only.
payee_checks = sa.Table(
    "payee_checks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("account_bidx", sa.String(64), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index(
    "ix_payee_checks_partner_account",
    payee_checks.c.partner_id,
    payee_checks.c.account_bidx,
    payee_checks.c.created_at,
)

# Payments a PISP initiated, each tied to the consent and the customer's account that paid
# for it: written only by the initiation, in its transaction, so the customer's money is
# returned only for these (and once: ``returned_at``).
initiated_payments = sa.Table(
    "initiated_payments",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("consent_id", sa.String(40), sa.ForeignKey("consents.id"), nullable=False),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("returned_at", UtcDateTime(), nullable=True),
)
# A consent's timeline lists the payments initiated under it.
sa.Index("ix_initiated_payments_consent", initiated_payments.c.consent_id)

TABLES = (
    consents,
    psu_authorisations,
    bank_customers,
    bank_accounts,
    bank_transactions,
    payee_checks,
    initiated_payments,
)
