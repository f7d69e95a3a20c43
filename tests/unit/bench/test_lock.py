"""Two bench runs in one checkout: the second refuses to start instead of recreating the
first's var/bench/ (its master key, its database) under it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bench import lock, run


def test_a_second_holder_is_refused_and_named(tmp_path: Path) -> None:
    path = tmp_path / "bench" / "run.lock"
    with lock.hold(path):
        with pytest.raises(lock.BenchBusy) as refused, lock.hold(path):
            pass
        assert f"pid {os.getpid()}" in str(refused.value)
    with lock.hold(path):  # released at the end of the block
        pass


def test_a_run_refuses_while_another_process_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.lock"
    holder = subprocess.Popen(  # another bench run, as far as the lock can tell
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from bench import lock
                with lock.hold(Path({str(path)!r})):
                    print("held", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        cwd=Path(run.ROOT),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(run, "VAR_DIR", tmp_path)
        monkeypatch.setattr(run, "load_config", _must_not_start)
        with pytest.raises(lock.BenchBusy) as refused:
            run.main(["--smoke"])
        assert f"pid {holder.pid}" in str(refused.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)


def _must_not_start(**_: object) -> None:
    raise AssertionError("the second run went on")
