"""What a partner event type is: its name, the object it carries and what it means.

Each capability declares the partner events it raises (``registry.add_event_types``); the
webhooks capability turns the union into the catalogue partners subscribe to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    object: str
    meaning: str
    emitted: bool = True  # False: reserved for a capability that is not built yet
