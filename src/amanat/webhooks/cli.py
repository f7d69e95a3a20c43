"""Webhooks' commands: a local listener to develop against."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

webhooks_app = typer.Typer(no_args_is_help=True, help="Develop against webhooks locally.")

COMMANDS = (("webhooks", webhooks_app),)
"""The command groups the root ``amanat`` command adds (found by convention)."""


@webhooks_app.command("listen")
def webhooks_listen(
    port: int = typer.Option(9000, min=1, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    secret: list[str] = typer.Option(
        [],
        "--secret",
        envvar="AMANAT_WEBHOOK_SECRET",
        help="whsec_... to verify with; repeat during a rotation.",
    ),
    forward_to: str | None = typer.Option(
        None, "--forward-to", help="Pass every delivery, unchanged, to this URL."
    ),
    status: int = typer.Option(200, min=100, max=599, help="Status to answer when not forwarding."),
    tolerance_seconds: int = typer.Option(
        300, min=0, help="Accepted clock difference for webhook-timestamp."
    ),
) -> None:
    """Receive webhooks on this machine: print each delivery and check its signature.

    Register http://127.0.0.1:PORT/ as an endpoint (sandbox), then make a payment."""
    from datetime import timedelta

    import uvicorn

    from amanat.webhooks.listener import build_listener

    out = Console(soft_wrap=True, highlight=False)

    def report(line: dict[str, Any]) -> None:
        checked = str(line["signature"])
        mark = "[green]✓[/]" if checked.startswith("ok") else "·"
        if checked.startswith("FAILED"):
            mark = "[red]✗[/]"
        text = (
            f"{line['received_at']} {mark} {line['webhook_id']} {line['type']} "
            f"{line['object_id']} status={line['status']} version={line['version']} "
            f"signature={line['signature']} answered={line['answered']}"
        )
        if "forwarded" in line:
            text += f" forwarded={line['forwarded']}"
        out.print(text)

    listener = build_listener(
        secrets=list(secret),
        forward_to=forward_to,
        status=status,
        tolerance=timedelta(seconds=tolerance_seconds),
        report=report,
    )
    out.print(f"listening on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(listener, host=host, port=port, log_level="warning")
