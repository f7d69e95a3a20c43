"""Load generators: wrk with bench/lua/scenario.lua, and a bounded async Python client.

wrk carries the throughput scenarios (it costs the shared CPUs far less than Python
would). The Python client is for what must be checked answer by answer: the webhook flow,
idempotency races and replays, warm-up, and a fallback when wrk cannot be had
(``BENCH_LOAD=python``). Both stop by themselves (duration or request count) and only
ever talk to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.config import LUA_SCRIPT
from bench.stats import LatencySummary, summarize

RESULT_MARK = "BENCH_RESULT "


@dataclass
class LoadResult:
    tool: str
    duration_s: float
    requests: int  # answers received
    ok: int  # answers with the expected status
    status: dict[str, int]  # "2xx", "3xx", "4xx", "5xx", "409", "429"
    transport_errors: int  # connect/read/write errors and timeouts
    unexpected: int  # answers with another status than expected
    latency: LatencySummary
    first_bad: str = ""
    replay_header_missing: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.transport_errors + self.unexpected

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "duration_s": round(self.duration_s, 2),
            "requests": self.requests,
            "ok": self.ok,
            "throughput_rps": round(self.throughput, 1),
            "latency": self.latency.as_dict(),
            "status": self.status,
            "errors": self.errors,
            "transport_errors": self.transport_errors,
            "unexpected_status": self.unexpected,
            "first_bad": self.first_bad,
            "replay_header_missing": self.replay_header_missing,
            **({"detail": self.detail} if self.detail else {}),
        }


# -- wrk -------------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """The wrk binary; installs the Debian package when missing (root and apt only)."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    subprocess.run(install, env=env, capture_output=True, timeout=300, check=False)  # noqa: S603
    if not shutil.which("wrk"):  # a stale package index: refresh it once and retry
        for argv in (["apt-get", "update", "-qq"], install):
            subprocess.run(argv, env=env, capture_output=True, timeout=300, check=False)  # noqa: S603
    return shutil.which("wrk")


def wrk_version(binary: str) -> str:
    done = subprocess.run(  # noqa: S603
        [binary, "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].split("[")[0].split(" Copyright")[0].strip() if text else "wrk"


def parse_wrk_output(stdout: str, expected_ok_status: int) -> dict[str, Any]:
    """The JSON line scenario.lua's done() prints."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            data: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            data["expected_status"] = expected_ok_status
            return data
    raise RuntimeError(f"wrk printed no {RESULT_MARK.strip()} line:\n{stdout[-2000:]}")


def wrk_result(data: dict[str, Any]) -> LoadResult:
    duration = data["duration_us"] / 1e6
    errors = data["errors"]
    latency = data["latency_us"]
    requests = int(data["requests"])
    unexpected = int(data["unexpected"])
    # wrk keeps a histogram, not samples: its own percentiles, in microseconds.
    summary = LatencySummary(
        count=requests,
        mean=latency["mean"] / 1000,
        p50=latency["p50"] / 1000,
        p95=latency["p95"] / 1000,
        p99=latency["p99"] / 1000,
        max=latency["max"] / 1000,
    )
    return LoadResult(
        tool="wrk",
        duration_s=duration,
        requests=requests,
        ok=requests - unexpected,
        status={k: int(v) for k, v in data["status"].items()},
        transport_errors=sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
        unexpected=unexpected,
        latency=summary,
        first_bad=data.get("first_bad", ""),
        replay_header_missing=int(data.get("replay_header_missing", 0)),
    )


def run_wrk(
    binary: str,
    base_url: str,
    *,
    mode: str,
    duration: float,
    connections: int,
    threads: int,
    args: dict[str, str],
) -> LoadResult:
    seconds = max(1, math.ceil(duration))
    argv = [
        binary,
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
        "--",
        f"mode={mode}",
        *(f"{key}={value}" for key, value in args.items()),
    ]
    done = subprocess.run(  # noqa: S603 - our own argv
        argv, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    expected = 201 if mode in {"create", "replay"} else 200
    return wrk_result(parse_wrk_output(done.stdout, expected))


# -- the Python client ---------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: str | bytes | None = None
    expected: int = 200
    tag: Any = None


@dataclass
class Answer:
    call: Call
    status: int | None  # None: no answer (connection error, timeout)
    latency_ms: float
    headers: httpx.Headers | None
    body: bytes
    error: str | None = None
    sent_at: float = 0.0  # time.time() when sent

    def json(self) -> Any:
        return json.loads(self.body)


async def run_calls(
    base_url: str,
    next_call: Callable[[int], Call | None],
    *,
    concurrency: int,
    duration: float | None = None,
    rate: float | None = None,
    on_answer: Callable[[Answer], None] | None = None,
    request_timeout: float = 10.0,
) -> LoadResult:
    """Send calls from ``next_call(i)`` (None: no more) with at most ``concurrency`` in
    flight, for at most ``duration`` seconds, at most ``rate`` per second."""
    latencies: list[float] = []
    status = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "409": 0, "429": 0}
    counts = {"requests": 0, "ok": 0, "transport": 0, "unexpected": 0, "replay_missing": 0}
    first_bad: list[str] = []
    index = 0
    started = time.perf_counter()
    deadline = started + duration if duration is not None else None
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=base_url, timeout=request_timeout, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal index
            while True:
                now = time.perf_counter()
                if deadline is not None and now >= deadline:
                    return
                i = index
                index += 1
                call = next_call(i)
                if call is None:
                    return
                if rate:
                    wait = started + i / rate - now
                    if deadline is not None and now + max(wait, 0) >= deadline:
                        return
                    if wait > 0:
                        await asyncio.sleep(wait)
                answer = await _send(client, call)
                latencies.append(answer.latency_ms)
                _count(answer, status, counts, first_bad)
                if on_answer is not None:
                    on_answer(answer)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        tool="python",
        duration_s=elapsed,
        requests=counts["requests"],
        ok=counts["ok"],
        status=status,
        transport_errors=counts["transport"],
        unexpected=counts["unexpected"],
        latency=summarize(latencies),
        first_bad=first_bad[0] if first_bad else "",
        replay_header_missing=counts["replay_missing"],
    )


async def _send(client: httpx.AsyncClient, call: Call) -> Answer:
    sent_at = time.time()
    begun = time.perf_counter()
    try:
        response = await client.request(
            call.method, call.path, headers=call.headers, content=call.body
        )
    except httpx.HTTPError as exc:
        return Answer(
            call, None, (time.perf_counter() - begun) * 1000, None, b"", repr(exc), sent_at
        )
    return Answer(
        call,
        response.status_code,
        (time.perf_counter() - begun) * 1000,
        response.headers,
        response.content,
        None,
        sent_at,
    )


def _count(
    answer: Answer, status: dict[str, int], counts: dict[str, int], first_bad: list[str]
) -> None:
    if answer.status is None:
        counts["transport"] += 1
        if not first_bad:
            first_bad.append(answer.error or "transport error")
        return
    counts["requests"] += 1
    status[f"{answer.status // 100}xx"] += 1
    if str(answer.status) in status:
        status[str(answer.status)] += 1
    if answer.status == answer.call.expected:
        counts["ok"] += 1
    else:
        counts["unexpected"] += 1
        if not first_bad:
            first_bad.append(f"{answer.status} {answer.body[:300].decode(errors='replace')}")
