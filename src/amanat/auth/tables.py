"""The authorization server's tables (SQLAlchemy Core), on the one shared metadata.
Migrations must match these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("encrypted", sa.Boolean, nullable=False),
    sa.Column("public_jwk", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("retire_after", UtcDateTime(), nullable=True),
    sa.Column("retired_at", UtcDateTime(), nullable=True),
)

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(40), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
)

authorization_codes = sa.Table(
    "authorization_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(40), nullable=False),
    sa.Column("redirect_uri", sa.String(500), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("code_challenge", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column("consent_id", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("used_at", UtcDateTime(), nullable=True),
    sa.Column("family_id", sa.String(40), nullable=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("family_id", sa.String(40), nullable=False),
    sa.Column("client_id", sa.String(40), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column("consent_id", sa.String(64), nullable=True),
    sa.Column("access_jti", sa.String(64), nullable=False),
    sa.Column("access_expires_at", UtcDateTime(), nullable=False),
    sa.Column("issued_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("used_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_refresh_tokens_family", refresh_tokens.c.family_id)

client_assertion_jtis = sa.Table(
    "client_assertion_jtis",
    metadata,
    sa.Column("client_id", sa.String(40), primary_key=True),
    sa.Column("jti", sa.String(128), primary_key=True),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)

TABLES = (
    signing_keys,
    revoked_tokens,
    authorization_codes,
    refresh_tokens,
    client_assertion_jtis,
)
