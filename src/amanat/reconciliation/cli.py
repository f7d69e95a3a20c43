"""Commands: ``amanat reconcile FILE --source NAME`` imports a bank statement or a rail
report and matches it, with a progress bar and a summary; ``amanat settlements close``
closes a settlement cycle now."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Table

from amanat.platform.cli import cli_actor, console
from amanat.platform.cli import run as _run
from amanat.platform.registry import Services
from amanat.reconciliation.domain.errors import StatementRejected
from amanat.reconciliation.domain.sources import SOURCES
from amanat.reconciliation.services.reconciliation import ImportResult, ReconciliationService
from amanat.reconciliation.services.settlements import ClosedCycle, SettlementService

settlements_app = typer.Typer(no_args_is_help=True, help="Settlement cycles.")


_CHUNK = 1 << 20


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    chunks: list[bytes] = []
    with (
        Progress(
            TextColumn("[bold]reading[/] {task.description}"),
            BarColumn(),
            DownloadColumn(),
            console=console,
            transient=True,
        ) as progress,
        path.open("rb") as handle,
    ):
        task = progress.add_task(path.name, total=size)
        while chunk := handle.read(_CHUNK):
            chunks.append(chunk)
            progress.advance(task, len(chunk))
    return b"".join(chunks)


def _summary(result: ImportResult) -> Table:
    row = result.row
    table = Table(title=f"{row.source}: {row.file_name}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_row("import", row.id)
    if result.already_imported:
        table.add_row("already imported", "yes: nothing changed")
    table.add_row("records in file", f"{row.records:,}")
    table.add_row("new records", f"{row.new_records:,}")
    table.add_row("matches made", f"{row.matched:,}")
    table.add_row("breaks opened", f"{row.breaks_opened:,}")
    table.add_row("breaks cleared", f"{row.breaks_cleared:,}")
    for kind, count in sorted(result.outcomes.items()):
        if kind != "matched":
            table.add_row(f"open: {kind}", f"{count:,}")
    table.add_row("open breaks in all", f"{result.open_breaks:,}")
    return table


def reconcile(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file.")
    ],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="Which report the file is: " + ", ".join(SOURCES) + ".",
        ),
    ],
) -> None:
    """Import FILE as SOURCE's report and match it against amanat's settled payments.

    A file with any fault is refused whole (every fault listed, exit 1); the same file
    twice changes nothing; the summary counts matches and breaks."""
    data = _read(file)

    async def work(container: Services) -> ImportResult:
        with console.status(f"importing and matching {len(data):,} bytes"):
            return await container.get(ReconciliationService).import_file(
                cli_actor(), source, data, file.name
            )

    try:
        result = _run(work)
    except StatementRejected as exc:
        console.print(f"[red]statement_rejected:[/] {escape(exc.message)}")
        for error in exc.errors:
            console.print(f"  {escape(error.location)}: {escape(error.message)}")
        raise typer.Exit(code=1) from None
    console.print(_summary(result))


@settlements_app.command("close")
def close(
    business_date: Annotated[
        str | None,
        typer.Option("--date", help="YYYY-MM-DD; default: every cycle due now."),
    ] = None,
) -> None:
    """Close a settlement cycle now (the worker does it by itself after each cut-off)."""
    day = None
    if business_date is not None:
        try:
            day = date.fromisoformat(business_date)
        except ValueError:
            raise typer.BadParameter("--date is YYYY-MM-DD") from None

    async def work(container: Services) -> list[ClosedCycle]:
        service = container.get(SettlementService)
        if day is None:
            return await service.close_due(cli_actor())
        return [await service.close(cli_actor(), day)]

    cycles = _run(work)
    if not cycles:
        typer.echo("no cycle due")
    for cycle in cycles:
        table = Table(title=f"cycle {cycle.business_date.isoformat()} ({cycle.rail})")
        for column in ("settlement", "partner", "lines", "collections", "fees", "net"):
            table.add_column(column, justify="right" if column != "settlement" else "left")
        for s in cycle.settlements:
            table.add_row(
                s.id,
                s.partner_id,
                str(s.line_count),
                f"{s.gross_collections:,}",
                f"{s.fees_charged:,}",
                f"{s.net:,}",
            )
        console.print(table)


COMMANDS = (("reconcile", reconcile), ("settlements", settlements_app))
"""The command and the group the root ``amanat`` command adds (found by convention)."""
