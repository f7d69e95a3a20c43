"""What every ``amanat`` command shares: reading settings, logging, the console, the CLI's
audit actor, and running one use case against a container built from the environment.

Capabilities bring their own command groups (``registry.add_commands``); the root command
(:mod:`amanat.cli`) tells this module how to build a container, so a capability's commands
never import the composition root.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from amanat.kernel.errors import DomainError
from amanat.platform.audit.domain import Actor
from amanat.platform.registry import Services
from amanat.platform.settings import Settings

T = TypeVar("T")

console = Console(stderr=True)


class ClosableServices(Services, Protocol):
    async def close(self) -> None: ...


_container_factory: Callable[[Settings], Any] | None = None


def use_container_factory(factory: Callable[[Settings], ClosableServices]) -> None:
    """Set by the root command: how a command gets its services."""
    global _container_factory
    _container_factory = factory


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        console.print("[bold red]amanat cannot start: a setting is wrong:[/]")
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            console.print(f"  - {where}: {error['msg']}")
        raise typer.Exit(code=2) from None


def configure_logging(settings: Settings) -> None:
    from amanat.platform.observability.logging import configure_logging_from

    configure_logging_from(settings)


def run(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run one async operation against a container built from the environment."""
    if _container_factory is None:
        raise RuntimeError("amanat.cli sets the container factory before any command runs")
    factory = _container_factory
    current = settings()
    configure_logging(current)

    async def runner() -> T:
        container = factory(current)
        try:
            return await work(container)
        finally:
            await container.close()

    try:
        return asyncio.run(runner())
    except DomainError as exc:
        console.print(f"[red]{exc.code}:[/] {exc.message}")
        raise typer.Exit(code=1) from None


def cli_actor() -> Actor:
    return Actor(type="cli", id=getpass.getuser(), user_agent="amanat-cli")
