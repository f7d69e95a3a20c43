"""``amanat sandbox faults``: a partner reaches the sandbox rail's fault injection from
the command line, against a real rail server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from amanat.cli import app
from amanat.sandbox_rail import RailSettings, create_rail_app


@pytest.fixture
def rail_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rail = create_rail_app(RailSettings(callback_secret="s", admin_token="drill-admin"))
    server = uvicorn.Server(
        uvicorn.Config(rail, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    # Why 30 s: a slow, shared machine may take seconds to start the server (was 4 s).
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    monkeypatch.setenv("AMANAT_RAIL__BASE_URL", url)
    monkeypatch.setenv("AMANAT_RAIL__ADMIN_TOKEN", "drill-admin")
    try:
        assert server.started, "the rail server did not start"
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_faults_can_be_set_shown_and_cleared(rail_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["sandbox", "faults", "set", "--downtime", "30", "--latency-ms", "5"]
    )
    assert result.exit_code == 0, result.output
    assert '"down": true' in result.output and '"latency_ms": 5' in result.output
    transfer = httpx.get(f"{rail_url}/v1/transfers/pay_x", timeout=5)
    assert transfer.status_code == 503 and transfer.headers["Retry-After"]
    shown = runner.invoke(app, ["sandbox", "faults", "show"])
    assert shown.exit_code == 0 and '"down": true' in shown.output
    cleared = runner.invoke(app, ["sandbox", "faults", "clear"])
    assert cleared.exit_code == 0 and '"down": false' in cleared.output
    assert httpx.get(f"{rail_url}/v1/transfers/pay_x", timeout=5).status_code == 404


def test_an_error_rate_of_one_refuses_every_call(rail_url: str) -> None:
    result = CliRunner().invoke(app, ["sandbox", "faults", "set", "--error-rate", "1"])
    assert result.exit_code == 0, result.output
    assert '"error_rate": 1.0' in result.output
    assert httpx.get(f"{rail_url}/v1/transfers/pay_x", timeout=5).status_code == 503


def test_nothing_to_set_and_a_wrong_token_are_clear_errors(
    rail_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CliRunner().invoke(app, ["sandbox", "faults", "set"]).exit_code == 2
    monkeypatch.setenv("AMANAT_RAIL__ADMIN_TOKEN", "wrong")
    result = CliRunner().invoke(app, ["sandbox", "faults", "show"])
    assert result.exit_code == 1
    assert "401" in result.output
