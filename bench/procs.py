"""Child processes (server, worker, receiver) and their memory, read from /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from amanat.platform.http.listeners import spreads_connections


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> Child:
    """Start ``argv`` in its own process group (so it and its children stop together)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - argv is ours, never user input
            list(argv),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Child(name, process, log_path)


def stop(child: Child, timeout: float = 15.0) -> int | None:
    """SIGTERM the child's process group, then SIGKILL it if it lingers."""
    if child.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.process.wait(5)
    # Children of the group leader (uvicorn workers) may outlive it for a moment.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    return child.process.returncode


def wait_ready(url: str, child: Child, timeout: float = 60.0, *, workers: int = 1) -> None:
    """Until ``url`` answers 200 and, when each of ``workers`` server processes listens on
    a socket of its own (platform/http/listeners.py), every one of them listens: a load
    started when the first answers would open all its connections to that one, and a
    keep-alive connection never moves."""
    port = httpx.URL(url).port
    sockets = workers if port is not None and spreads_connections(workers, port) else 1
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                listening = sockets if port is None else listening_sockets(port)
                if listening >= sockets:
                    return
                last = f"{listening} of {sockets} workers listening"
            else:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} not ready at {url} after {timeout} s ({last})")


def listening_sockets(port: int) -> int:
    """How many TCP sockets listen on ``port`` (Linux's /proc/net/tcp and tcp6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def wait_logged(child: Child, text: str, timeout: float = 120.0) -> None:
    """Until ``text`` appears in the child's log (a worker has no /readyz: it logs
    ``worker_started`` once it runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        try:
            if text in child.log_path.read_text(errors="replace"):
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{child.name} did not log {text!r} within {timeout} s")


# -- memory ------------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process and all its descendants, and of the largest single
    process among them, in MiB."""
    sizes = [_rss_kib(member) for member in _descendants(_process_ticks(), pid)]
    return sum(sizes) / 1024, max(sizes, default=0) / 1024


@dataclass
class RssSampler:
    """Samples the resident memory of named process trees on a thread, keeping peaks."""

    pids: dict[str, int]
    interval: float = 0.5
    peaks: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            total, largest = tree_rss_mb(pid)
            self.peaks[name] = max(self.peaks.get(name, 0.0), total)
            key = f"{name}_largest_process"
            self.peaks[key] = max(self.peaks.get(key, 0.0), largest)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sample()

    def result(self) -> dict[str, float]:
        return {name: round(value, 1) for name, value in self.peaks.items()}


# -- CPU: who used the shared cores during a load ----------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int, int]:
    """Ticks of all CPUs since boot, from /proc/stat: busy (steal included; guest time is
    already inside user/nice), irq + softirq (the kernel's share of the load: loopback TCP
    is processed there, charged to no process) and steal (the hypervisor ran another
    machine)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    fields += [0] * (8 - len(fields))
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, fields[5] + fields[6], fields[7]


def _process_ticks() -> dict[int, tuple[str, int, int]]:
    """pid -> (command, parent pid, user+system ticks) of every process."""
    found: dict[int, tuple[str, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces or parentheses: split after its end.
        command = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        found[int(entry.name)] = (command, int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def _descendants(snapshot: dict[int, tuple[str, int, int]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in snapshot.items():
        children.setdefault(parent, []).append(pid)
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


def _reaped_children_ticks() -> int:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * _TICKS)


class CpuWindow:
    """CPU use during a window, in % of one core: the whole machine, the bench's own
    processes (server, worker, load generator, this process), PostgreSQL's processes (all
    of them: other databases' users too), and everything else. "other" well above zero
    means someone else shared the machine and the numbers are pessimistic.

    Processes are sampled every ``interval`` seconds, so short-lived ones (a PostgreSQL
    backend per connection) are counted up to their last sample; children this process
    waited for (wrk, pgbench) are counted through getrusage."""

    def __init__(
        self, interval: float = 0.5, roles: dict[str, int | Sequence[int]] | None = None
    ) -> None:
        """``roles``: a name for the process trees under one pid or several (``{"api":
        server pid}``), reported apart as ``<name>_pct`` (part of bench_pct)."""
        self.interval = interval
        self.result: dict[str, Any] = {}
        self._first: dict[int, int] = {}
        self._last: dict[int, tuple[str, int]] = {}
        self._ours: set[int] = set()
        self._roles = {
            role: [roots] if isinstance(roots, int) else list(roots)
            for role, roots in (roles or {}).items()
        }
        self._role_of: dict[int, str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _sample(self, *, initial: bool = False) -> None:
        snapshot = _process_ticks()
        ours = _descendants(snapshot, os.getpid())
        with self._lock:
            for pid, (command, _, ticks) in snapshot.items():
                self._first.setdefault(pid, ticks if initial else 0)
                self._last[pid] = (command, ticks)
            self._ours |= ours
            for role, roots in self._roles.items():
                for root in roots:
                    for pid in _descendants(snapshot, root):
                        self._role_of.setdefault(pid, role)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuWindow:
        self._start = time.monotonic()
        self._machine, self._interrupts, self._steal = _machine_ticks()
        self._reaped = _reaped_children_ticks()
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        elapsed = max(time.monotonic() - self._start, 1e-6)
        machine, interrupts, steal = _machine_ticks()
        machine -= self._machine
        interrupts -= self._interrupts
        steal -= self._steal
        alive = set(_process_ticks())
        own = _reaped_children_ticks() - self._reaped
        postgres = 0
        others: dict[str, int] = {}
        by_role = dict.fromkeys(self._roles, 0)
        for pid, (command, ticks) in self._last.items():
            used = ticks - self._first.get(pid, 0)
            role = self._role_of.get(pid)
            if role is not None:
                by_role[role] += used  # up to its last sample, if it ended meanwhile
            if pid in self._ours:
                own += used if pid in alive else 0  # reaped ones are in getrusage
            elif command.startswith("postgres"):
                postgres += used
            elif used > 0:
                others[command] = others.get(command, 0) + used

        def pct(ticks: int) -> float:
            return round(100 * ticks / _TICKS / elapsed, 1)

        busiest = sorted(others.items(), key=lambda item: -item[1])[:3]
        self.result = {
            "machine_pct": pct(machine),
            "bench_pct": pct(own),
            "postgres_pct": pct(postgres),
            "interrupts_pct": pct(interrupts),
            "steal_pct": pct(steal),  # part of other_pct: another machine had the CPU
            "other_pct": pct(max(0, machine - own - postgres - interrupts)),
            "other_processes": {command: pct(ticks) for command, ticks in busiest},
            "cores": os.cpu_count(),
            **{f"{role}_pct": pct(ticks) for role, ticks in by_role.items()},
        }
