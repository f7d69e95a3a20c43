"""The sandbox rail keeps its transfers in a file of its own: a rail that was killed and
started again still knows, replays and settles every transfer it accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from tests.unit.sandbox_rail.test_engine import SECRET, Receiver, request

from amanat.kernel.clock import FrozenClock
from amanat.sandbox_rail.engine import DuplicateEndToEndId, RailEngine, RailSettings

E2E = "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C"


async def never(_: float) -> None:
    """A timer that never fires: the process dies before its transfers settle."""
    await asyncio.Event().wait()


async def instant(_: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., RailEngine]]:
    receiver = Receiver()
    http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    clock = FrozenClock()
    engines: list[RailEngine] = []

    def start(*, sleep: Callable[[float], object] = instant, file: bool = True) -> RailEngine:
        engine = RailEngine(
            RailSettings(
                callback_secret=SECRET,
                admin_token="admin-token",
                settle_delay=1.0,
                clock=clock,
                sleep=sleep,  # type: ignore[arg-type]
                http=http,
                state_file=tmp_path / "var" / "sandbox-rail.db" if file else None,
            )
        )
        engines.append(engine)
        return engine

    yield start
    for engine in engines:
        await engine.aclose()
    await http.aclose()


async def test_a_restarted_rail_still_knows_and_settles_what_it_accepted(
    start: Callable[..., RailEngine],
) -> None:
    killed = start(sleep=never)
    first = await killed.submit(request())
    await killed.aclose()  # dies with the transfer accepted and its timer pending

    again = start()
    view = await again.status(E2E)
    assert view is not None and view["status"] == "accepted"
    await again.drain()  # the resumed timer settles it
    view = await again.status(E2E)
    assert view is not None and (view["status"], view["sequence"]) == ("settled", 2)

    replay = await again.submit(request())
    assert replay.replay and replay.response == first.response, "the first acceptance, again"
    with pytest.raises(DuplicateEndToEndId):
        await again.submit(request(amount=150_100))
    assert again.store.get(E2E) is not None
    other = await again.submit(request(e2e="pay_other"))
    assert other.response["rail_reference"] != first.response["rail_reference"]


async def test_without_a_state_file_a_restart_forgets(start: Callable[..., RailEngine]) -> None:
    killed = start(file=False)
    await killed.submit(request())
    assert await start(file=False).status(E2E) is None
