"""Identity's commands: onboard partners and their clients, create console operators."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any

import typer

from amanat.identity.services.operators import OperatorService
from amanat.identity.services.partners import PartnerService
from amanat.platform.cli import cli_actor as _cli_actor
from amanat.platform.cli import console
from amanat.platform.cli import run as _run
from amanat.platform.registry import Services

partners_app = typer.Typer(no_args_is_help=True, help="Onboard partners and their clients.")
operators_app = typer.Typer(no_args_is_help=True, help="Console operator accounts.")

COMMANDS = (
    ("partners", partners_app),
    ("operators", operators_app),
)
"""The command groups the root ``amanat`` command adds (found by convention)."""


@partners_app.command("create")
def partners_create(
    name: str = typer.Option(..., help="Legal or trading name."),
    role: list[str] = typer.Option(..., help="merchant, aisp, pisp or cbpii (repeatable)."),
    mode: str = typer.Option("sandbox", help="sandbox or production."),
    auth_method: str = typer.Option(
        "client_secret_basic", help="client_secret_basic, client_secret_post or private_key_jwt."
    ),
    redirect_uri: list[str] = typer.Option([], help="Redirect URI (repeatable)."),
    jwks_uri: str | None = typer.Option(None, help="For private_key_jwt: the client's JWKS URL."),
) -> None:
    """Create a partner and its first OAuth client; prints the secret once."""

    async def work(container: Services) -> dict[str, Any]:
        actor = _cli_actor()
        partner = await container.get(PartnerService).create_partner(
            actor, name=name, roles=role, mode=mode
        )
        issued = await container.get(PartnerService).create_client(
            actor,
            partner.id,
            name=f"{name} client",
            auth_method=auth_method,
            redirect_uris=redirect_uri,
            jwks_uri=jwks_uri,
        )
        return {
            "partner_id": partner.id,
            "client_id": issued.client.id,
            "client_secret": issued.secret,
            "scopes": sorted(issued.client.allowed_scopes),
        }

    result = _run(work)
    typer.echo(json.dumps(result, indent=2))
    if result["client_secret"]:
        console.print("[yellow]The client secret is shown only now; store it safely.[/]")


@partners_app.command("rotate-secret")
def partners_rotate_secret(client_id: str) -> None:
    """Issue a new secret for a client; the old one stops working at once."""

    async def work(container: Services) -> str | None:
        issued = await container.get(PartnerService).rotate_client_secret(_cli_actor(), client_id)
        return issued.secret

    typer.echo(json.dumps({"client_id": client_id, "client_secret": _run(work)}, indent=2))


@partners_app.command("set-limit")
def partners_set_limit(
    partner_id: str,
    amount: int | None = typer.Option(
        None, help="Per-transaction limit in paisa; omit to restore the platform default."
    ),
) -> None:
    """Set a partner's per-transaction limit (audited)."""

    async def work(container: Services) -> None:
        await container.get(PartnerService).set_transaction_limit(_cli_actor(), partner_id, amount)

    _run(work)
    typer.echo(f"{partner_id}: per-transaction limit {amount if amount is not None else 'default'}")


@partners_app.command("require-payee-check")
def partners_require_payee_check(
    partner_id: str,
    required: bool = typer.Option(
        True, "--on/--off", help="Payouts need a recent payee check of the account (or not)."
    ),
) -> None:
    """Make a partner's payouts require a recent payee check of the account (audited)."""

    async def work(container: Services) -> None:
        await container.get(PartnerService).set_payee_check_requirement(
            _cli_actor(), partner_id, required
        )

    _run(work)
    typer.echo(f"{partner_id}: payee check before payouts {'required' if required else 'off'}")


@partners_app.command("set-rate-limit")
def partners_set_rate_limit(
    partner_id: str,
    policy: str = typer.Argument(..., help="read or write"),
    quota: str | None = typer.Option(
        None,
        help="LIMIT/WINDOW_SECONDS, e.g. 6000/60, for each of the partner's clients; "
        "omit to restore the platform's quota.",
    ),
) -> None:
    """Set a partner's own rate limit for one policy (audited)."""
    from amanat.platform.ratelimit.limiter import parse_policy

    try:
        parsed = None if quota is None else parse_policy(policy, quota)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from None
    pair = None if parsed is None else (parsed.limit, parsed.window_seconds)

    async def work(container: Services) -> None:
        await container.get(PartnerService).set_rate_limit(_cli_actor(), partner_id, policy, pair)

    _run(work)
    typer.echo(f"{partner_id}: {policy} rate limit {quota if quota is not None else 'default'}")


@operators_app.command("create")
def operators_create(
    email: str = typer.Option(...),
    name: str = typer.Option(...),
    role: list[str] = typer.Option(
        ..., help="support, operations, risk, compliance, admin, auditor (repeatable)."
    ),
    password_stdin: bool = typer.Option(False, help="Read the password from standard input."),
) -> None:
    """Create a console operator (the first admin, typically); prints the TOTP secret once."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (12+ characters): ")
        if getpass.getpass("Again: ") != password:
            console.print("[red]Passwords differ.[/]")
            raise typer.Exit(code=1)

    async def work(container: Services) -> dict[str, Any]:
        created = await container.get(OperatorService).create_operator(
            _cli_actor(), email=email, name=name, roles=role, password=password
        )
        return {
            "operator_id": created.operator.id,
            "email": created.operator.email,
            "roles": sorted(r.value for r in created.operator.roles),
            "totp_secret": created.totp_secret,
            "totp_uri": created.provisioning_uri,
        }

    typer.echo(json.dumps(_run(work), indent=2))
    console.print(
        "[yellow]Add the TOTP secret to an authenticator app now; it is not shown again.[/]"
    )
