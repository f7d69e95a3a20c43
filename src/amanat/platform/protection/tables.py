"""Data protection's tables (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

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
# A payout finds its creditor by (blind index, partner): a popular payee is on file with
# many partners, and an index of the blind index alone read every one of their records.
for _field in ("iban", "raast_id", "cnic"):
    sa.Index(
        f"ix_data_subjects_{_field}_bidx_partner",
        data_subjects.c[f"{_field}_bidx"],
        data_subjects.c.partner_id,
    )

TABLES = (
    data_keys,
    data_subjects,
)
