"""Table definitions (SQLAlchemy Core). Migrations must match these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.types import UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

# Append-only record of every privileged action. Rows are never updated or deleted.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),
    sa.Column("actor_type", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=True),
    sa.Column("target_id", sa.String(64), nullable=True),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(256), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ix_audit_log_target", audit_log.c.target_type, audit_log.c.target_id)
sa.Index("ix_audit_log_action_time", audit_log.c.action, audit_log.c.occurred_at)

# Append-only chain head: one row, locked by each audit append so the chain never forks.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

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

# Envelope encryption: data keys wrapped by the master key. Subject keys belong to one
# data subject; deleting the wrapped key crypto-shreds everything encrypted under it.
data_keys = sa.Table(
    "data_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),  # fields | blind_index | subject
    sa.Column("wrapped_key", sa.Text, nullable=True),
    sa.Column("master_key_id", sa.String(64), nullable=False),
    sa.Column(
        "status", sa.String(16), nullable=False
    ),  # active | decrypt_only | retired | shredded
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("retired_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_data_keys_purpose_status", data_keys.c.purpose, data_keys.c.status)

# A person whose personal data we hold (a payer, a payee, a PSU). Every personal field is
# encrypted with the subject's own key; blind indexes let operators find them by value.
data_subjects = sa.Table(
    "data_subjects",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("key_id", sa.String(40), sa.ForeignKey("data_keys.id"), nullable=False),
    sa.Column("name_enc", sa.Text, nullable=True),
    sa.Column("iban_enc", sa.Text, nullable=True),
    sa.Column("raast_id_enc", sa.Text, nullable=True),
    sa.Column("cnic_enc", sa.Text, nullable=True),
    sa.Column("iban_bidx", sa.String(64), nullable=True),
    sa.Column("raast_id_bidx", sa.String(64), nullable=True),
    sa.Column("cnic_bidx", sa.String(64), nullable=True),
    sa.Column("bank_code", sa.String(4), nullable=True),
    sa.Column("iban_last4", sa.String(4), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("erased_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_data_subjects_partner_created", data_subjects.c.partner_id, data_subjects.c.created_at)
sa.Index("ix_data_subjects_iban_bidx", data_subjects.c.iban_bidx)
sa.Index("ix_data_subjects_raast_id_bidx", data_subjects.c.raast_id_bidx)
sa.Index("ix_data_subjects_cnic_bidx", data_subjects.c.cnic_bidx)

# Signed checkpoints of the audit chain head (Ed25519), exportable outside the database.
audit_seals = sa.Table(
    "audit_seals",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("sealed_at", UtcDateTime(), nullable=False),
)

legal_holds = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("data_class", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("released_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_legal_holds_target", legal_holds.c.data_class, legal_holds.c.target_id)

# Idempotency-Key records of the partner API: one per (client, key).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),  # "<client_id>:<key>"
    sa.Column("client_id", sa.String(40), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # in_progress | completed
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),  # encrypted: it echoes personal data
    sa.Column("response_headers", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_idempotency_keys_created", idempotency_keys.c.created_at)

# Leases for periodic jobs, so that of many workers only one runs a given job at a time.
job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("leased_until", UtcDateTime(), nullable=False),
    sa.Column("last_started_at", UtcDateTime(), nullable=True),
    sa.Column("last_finished_at", UtcDateTime(), nullable=True),
    sa.Column("last_outcome", sa.String(500), nullable=True),
)

# --- payments core -------------------------------------------------------------------

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # also the rail's end-to-end id
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("client_id", sa.String(40), nullable=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("counterparty_id", sa.String(40), sa.ForeignKey("data_subjects.id"), nullable=False),
    sa.Column("counterparty_kind", sa.String(16), nullable=False),
    sa.Column("bank_code", sa.String(4), nullable=True),
    sa.Column("iban_last4", sa.String(4), nullable=True),
    sa.Column("reference", sa.String(140), nullable=True),
    sa.Column("description", sa.Text, nullable=True),  # encrypted: free text a person wrote
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(500), nullable=True),
    sa.Column("rail_reference", sa.String(64), nullable=True),
    sa.Column("rail_sequence", sa.Integer, nullable=False),
    sa.Column("submitted_at", UtcDateTime(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("refunded_amount", sa.BigInteger, nullable=False),
    sa.Column("parent_id", sa.String(40), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_payments_partner_created", payments.c.partner_id, payments.c.created_at, payments.c.id)
sa.Index("ix_payments_status_updated", payments.c.status, payments.c.updated_at)
sa.Index("ix_payments_parent", payments.c.parent_id)

payment_transitions = sa.Table(
    "payment_transitions",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("from_status", sa.String(24), nullable=True),
    sa.Column("to_status", sa.String(24), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("cause", sa.String(200), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)
sa.Index("ix_payment_transitions_payment", payment_transitions.c.payment_id)

ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("shards", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

ledger_journals = sa.Table(
    "ledger_journals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("reference", sa.String(40), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_ledger_journals_reference", ledger_journals.c.reference)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("journal_id", sa.String(40), sa.ForeignKey("ledger_journals.id"), nullable=False),
    sa.Column("account_id", sa.String(80), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # + debit, - credit
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_ledger_entries_account", ledger_entries.c.account_id)
sa.Index("ix_ledger_entries_journal", ledger_entries.c.journal_id)

# A merchant balance is split into shards so concurrent payouts of one busy merchant
# update different rows; the entries above stay the source of truth.
balance_shards = sa.Table(
    "balance_shards",
    metadata,
    sa.Column("account_id", sa.String(80), sa.ForeignKey("ledger_accounts.id"), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("posted", sa.BigInteger, nullable=False),  # credit-normal balance
    sa.Column("held", sa.BigInteger, nullable=False),
    sa.CheckConstraint("posted - held >= 0", name="available_not_negative"),
    sa.CheckConstraint("held >= 0", name="held_not_negative"),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # the payment or refund id
    sa.Column("account_id", sa.String(80), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("shard", sa.Integer, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | posted | voided
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_holds_account_status", holds.c.account_id, holds.c.status)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject_id", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | done | dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_at", UtcDateTime(), nullable=False),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_outbox_due", outbox.c.status, outbox.c.run_at)
# The payments sweeper asks, per payment in flight, whether a job is still pending for it.
sa.Index("ix_outbox_subject_status", outbox.c.subject_id, outbox.c.status)

rail_events = sa.Table(
    "rail_events",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("end_to_end_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_rail_events_e2e", rail_events.c.end_to_end_id)

rejected_callbacks = sa.Table(
    "rejected_callbacks",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("rail", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
)

# The event log (transactional outbox of partner-facing events). ``data`` is the object
# as committed, sealed: it can echo a payment's free-text description.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(40), nullable=False),
    sa.Column("object_version", sa.Integer, nullable=True),
    sa.Column("data", sa.Text, nullable=False),  # encrypted JSON
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_events_partner_created", events.c.partner_id, events.c.created_at, events.c.id)
sa.Index("ix_events_object", events.c.object_id)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(500), nullable=True),
    sa.Column("enabled_events", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.String(200), nullable=True),
    sa.Column("secret", sa.Text, nullable=False),  # encrypted
    sa.Column("previous_secret", sa.Text, nullable=True),  # encrypted
    sa.Column("previous_secret_expires_at", UtcDateTime(), nullable=True),
    sa.Column("failing_since", UtcDateTime(), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("deleted_at", UtcDateTime(), nullable=True),
)
sa.Index(
    "ix_webhook_endpoints_partner",
    webhook_endpoints.c.partner_id,
    webhook_endpoints.c.created_at,
    webhook_endpoints.c.id,
)

# One row per (event, endpoint, trigger): the delivery queue. The worker claims due rows
# (SKIP LOCKED on PostgreSQL); retries are driven by these rows, never by event creation.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("events.id"), nullable=False),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # event | held | redeliver | replay
    sa.Column("status", sa.String(16), nullable=False),  # pending | succeeded | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("event_created_at", UtcDateTime(), nullable=False),
    sa.Column("first_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)
sa.Index(
    "ix_webhook_deliveries_endpoint",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.created_at,
    webhook_deliveries.c.id,
)
sa.Index("ix_webhook_deliveries_event", webhook_deliveries.c.event_id)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("delivery_id", sa.String(40), sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("error_class", sa.String(64), nullable=True),
    sa.Column("response_excerpt", sa.String(1024), nullable=True),
)
sa.Index("ix_webhook_attempts_delivery", webhook_attempts.c.delivery_id)
