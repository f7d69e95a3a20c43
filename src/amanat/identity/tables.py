"""Identity's tables (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

partners = sa.Table(
    "partners",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("per_transaction_limit", sa.BigInteger, nullable=True),
    # {"write": [6000, 60]}: an operator's per-partner rate-limit quotas (migration 0007).
    sa.Column("rate_limits", sa.JSON, nullable=True),
    # Payouts only to accounts the partner checked (POST /v1/payee_checks) lately.
    sa.Column("require_payee_check", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_partners_created", partners.c.created_at, partners.c.id)

oauth_clients = sa.Table(
    "oauth_clients",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("auth_method", sa.String(32), nullable=False),
    sa.Column("secret_hash", sa.String(256), nullable=True),
    sa.Column("jwks", sa.JSON, nullable=True),
    sa.Column("jwks_uri", sa.String(500), nullable=True),
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    sa.Column("allowed_scopes", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("secret_rotated_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_oauth_clients_partner", oauth_clients.c.partner_id)

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("totp_secret", sa.String(128), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("last_totp_step", sa.BigInteger, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_login_at", UtcDateTime(), nullable=True),
)

operator_sessions = sa.Table(
    "operator_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("operator_id", sa.String(40), sa.ForeignKey("operators.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("idle_expires_at", UtcDateTime(), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(256), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_operator_sessions_operator", operator_sessions.c.operator_id)

TABLES = (
    partners,
    oauth_clients,
    operators,
    operator_sessions,
)
