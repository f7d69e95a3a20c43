"""The webhook worker runs on uvloop and everything else on asyncio's own loop: the
delivery adapters are tested on both."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pytest_asyncio.plugin import LoopFactory


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, LoopFactory]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
