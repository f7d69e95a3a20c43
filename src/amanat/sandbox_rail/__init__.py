"""A Raast-like rail and sandbox bank: a standalone app amanat talks to in the sandbox.

It simulates an external system, so it imports nothing of amanat but the pure domain
rules (IBAN and Raast ID validation) and the callback signature scheme. See
docs/sandbox-rail.md for the protocol and the test values.
"""

from amanat.sandbox_rail.app import create_rail_app
from amanat.sandbox_rail.engine import RailEngine, RailSettings
from amanat.sandbox_rail.magic import MAGIC_VALUES, MagicValue, magic_for

__all__ = [
    "MAGIC_VALUES",
    "MagicValue",
    "RailEngine",
    "RailSettings",
    "create_rail_app",
    "magic_for",
]
