"""What open banking tells the rest of amanat when a consent changes (published in the
transaction that changes it; webhooks turns it into the TPP's ``consent.*`` events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amanat.kernel.clock import format_timestamp
from amanat.openbanking.domain.consents import Consent, ConsentStatus

# The partner event each status raises (the catalogue's consent.* types).
EVENT_TYPES: dict[ConsentStatus, str] = {
    ConsentStatus.AUTHORISED: "consent.authorised",
    ConsentStatus.REVOKED: "consent.revoked",
}


@dataclass(frozen=True, slots=True)
class ConsentChanged:
    partner_id: str
    consent_id: str
    version: int
    event_type: str
    view: dict[str, Any]


def consent_changed(consent: Consent) -> ConsentChanged | None:
    """The event for this new version of the consent, if its status raises one."""
    event_type = EVENT_TYPES.get(consent.status)
    if event_type is None:
        return None
    return ConsentChanged(
        partner_id=consent.partner_id,
        consent_id=consent.id,
        version=consent.version,
        event_type=event_type,
        view={
            "object": "consent",
            "id": consent.id,
            "kind": consent.kind.value,
            "status": consent.status.value,
            "permissions": list(consent.permissions),
            "expires_at": format_timestamp(consent.expires_at) if consent.expires_at else None,
            "status_updated_at": format_timestamp(consent.status_updated_at),
            "reason": consent.ended_reason,
            "version": consent.version,
        },
    )
