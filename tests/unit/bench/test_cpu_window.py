"""The bench's CPU window names the process trees it was given (nothing is timed: a
process that spins is only required to show some CPU, and one that sleeps none)."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.procs import CpuWindow, _process_ticks

SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"
SLEEP = "import time; time.sleep(30)"


def _ticks(pid: int) -> int:
    """The CPU clock ticks ``pid`` has used, as the window itself reads them."""
    return _process_ticks()[pid][2]


def test_each_role_gets_its_own_share() -> None:
    spinning = subprocess.Popen([sys.executable, "-c", SPIN])
    sleeping = subprocess.Popen([sys.executable, "-c", SLEEP])
    try:
        with CpuWindow(interval=0.05, roles={"busy": [spinning.pid], "idle": sleeping.pid}) as cpu:
            # Until the spinning child has used a few clock ticks inside the window, on
            # any machine.
            start = _ticks(spinning.pid)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _ticks(spinning.pid) < start + 5:
                time.sleep(0.05)
    finally:
        spinning.kill()
        sleeping.kill()
        spinning.wait()
        sleeping.wait()
    assert cpu.result["busy_pct"] > 0
    assert cpu.result["idle_pct"] < cpu.result["busy_pct"]
    assert "api_pct" not in cpu.result, "only the roles it was given"
