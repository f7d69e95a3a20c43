"""Bounds on a partner's own key-value metadata (as Stripe bounds it).

Metadata is stored and returned as given, in every payment view, event and webhook; without
bounds one request could store a megabyte that is then copied into every delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amanat.kernel.errors import InvalidInput

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The metadata as a plain dict of strings, or :class:`InvalidInput` naming the rule."""
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidInput(
            f"metadata holds at most {MAX_METADATA_KEYS} keys.", reason="metadata_too_many_keys"
        )
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise InvalidInput(
                f"metadata keys are 1 to {MAX_METADATA_KEY_LENGTH} characters.",
                reason="metadata_key_length",
            )
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_LENGTH:
            raise InvalidInput(
                f"metadata values are strings of at most {MAX_METADATA_VALUE_LENGTH} characters.",
                reason="metadata_value",
            )
        checked[key] = value
    return checked
