"""Set-up for tests that run the `amanat` CLI in this process with typer's CliRunner.

The command reads its settings from the environment while the test checks the result with
a container of its own; both must name the same database and key files, so one function
sets the one and builds the other. CliRunner runs ``asyncio.run`` inside, so such tests
are synchronous and run container work through ``in_container``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from amanat.bootstrap import Container, build_container
from amanat.platform.settings import DatabaseSettings, Settings

T = TypeVar("T")


def cli_settings(
    database_url: str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    witness: bool = False,
) -> Settings:
    """Points the CLI at ``database_url`` and key files in ``workdir`` (and the audit
    witness file there if ``witness``); the same settings for the test's own container."""
    monkeypatch.setenv("AMANAT_DATABASE__URL", database_url)
    monkeypatch.setenv("AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE", str(workdir / "master.key"))
    monkeypatch.setenv("AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE", str(workdir / "seal.key"))
    monkeypatch.setenv("AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE", str(workdir / "creds.json"))
    audit: dict[str, Any] = {}
    if witness:
        monkeypatch.setenv("AMANAT_AUDIT__WITNESS_FILE", str(workdir / "witness.jsonl"))
        audit["witness_file"] = workdir / "witness.jsonl"
    return Settings(
        database=DatabaseSettings(url=database_url),
        auth={"sandbox_credentials_file": workdir / "creds.json"},
        crypto={
            "sandbox_master_key_file": workdir / "master.key",
            "audit_seal_key_file": workdir / "seal.key",
        },
        audit=audit,
    )


def in_container(settings: Settings, work: Callable[[Container], Awaitable[T]]) -> T:
    """``work`` with a fresh container, in an event loop of its own; closes the container."""

    async def run() -> T:
        container = build_container(settings)
        try:
            return await work(container)
        finally:
            await container.close()

    return asyncio.run(run())
