"""Payments' commands: check the ledger."""

from __future__ import annotations

import typer

from amanat.payments.service import PaymentService
from amanat.platform.cli import console
from amanat.platform.cli import run as _run
from amanat.platform.registry import Services

ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")

COMMANDS = (("ledger", ledger_app),)
"""The command groups the root ``amanat`` command adds (found by convention)."""


@ledger_app.command("check")
def ledger_check() -> None:
    """Recompute balances from the immutable entries and compare; exit 1 on any drift."""

    async def work(container: Services) -> list[str]:
        return await container.get(PaymentService).check_ledger()

    problems = _run(work)
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        raise typer.Exit(code=1)
    typer.echo(
        "ledger OK: every journal balances, the ledger sums to zero, balances and "
        "holds match the entries"
    )
