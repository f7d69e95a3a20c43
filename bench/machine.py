"""What the numbers were measured on: CPU, memory, OS, versions, commit."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.config import ROOT


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_quota() -> str | None:
    raw = _read("/sys/fs/cgroup/cpu.max").split()
    if len(raw) == 2 and raw[0] != "max":
        return f"{int(raw[0]) / int(raw[1]):g} CPUs (cgroup)"
    return None


def _memory_gib() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - read-only git queries
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return ""
    return done.stdout.strip()


def describe(extra: dict[str, str]) -> dict[str, Any]:
    import fastapi
    import sqlalchemy
    import uvicorn

    try:
        loop = f"uvloop {metadata.version('uvloop')}"
    except metadata.PackageNotFoundError:
        loop = "asyncio"
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpu_quota": _cpu_quota(),
        "memory_gib": _memory_gib(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "uvicorn": f"{uvicorn.__version__} ({loop})",
        "fastapi": fastapi.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        **extra,
    }


def git_state() -> dict[str, Any]:
    return {
        "commit": _git("rev-parse", "--short", "HEAD") or None,
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
