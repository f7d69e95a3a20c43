"""The ``amanat`` command: serve, migrate, inspect configuration, and operate the platform."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from amanat.domain.audit import Actor
from amanat.domain.errors import DomainError
from amanat.settings import Settings

if TYPE_CHECKING:
    from amanat.bootstrap import Container

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="amanat: payments and open-banking API platform for Pakistan.",
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration.")
partners_app = typer.Typer(no_args_is_help=True, help="Onboard partners and their clients.")
operators_app = typer.Typer(no_args_is_help=True, help="Console operator accounts.")
keys_app = typer.Typer(no_args_is_help=True, help="Token-signing keys.")
sandbox_app = typer.Typer(no_args_is_help=True, help="The sandbox environment.")
app.add_typer(config_app, name="config")
app.add_typer(partners_app, name="partners")
app.add_typer(operators_app, name="operators")
app.add_typer(keys_app, name="keys")
app.add_typer(sandbox_app, name="sandbox")

console = Console(stderr=True)


def _settings() -> Settings:
    return Settings()


def refuse_insecure_production(settings: Settings) -> None:
    problems = settings.production_problems()
    if problems:
        console.print("[bold red]amanat refuses to start in production:[/]")
        for problem in problems:
            console.print(f"  - {problem}")
        raise typer.Exit(code=2)


def _configure_logging(settings: Settings) -> None:
    from amanat.observability.logging import configure_logging

    as_json = settings.observability.log_json
    if as_json is None:
        as_json = settings.is_production or not sys.stderr.isatty()
    configure_logging(json=as_json, level=settings.observability.log_level)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    settings = _settings()
    typer.echo(json.dumps(settings.masked(), indent=2))
    for problem in settings.production_problems():
        console.print(f"[yellow]production problem:[/] {problem}")


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the latest migration."""
    from amanat.adapters.db.migrate import upgrade

    settings = _settings()
    refuse_insecure_production(settings)
    _configure_logging(settings)
    upgrade(settings.database.url)
    console.print("[green]database migrated to head[/]")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings)."),
    workers: int = typer.Option(1, min=1, help="Server processes."),
) -> None:
    """Serve the HTTP APIs, portal and console."""
    import uvicorn

    settings = _settings()
    refuse_insecure_production(settings)
    _configure_logging(settings)
    bind_host = host or settings.http.host
    bind_port = port or settings.http.port
    uvicorn.run(
        "amanat.api.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )


def _run(work: Callable[[Container], Awaitable[T]]) -> T:
    """Run one async operation against a container built from the environment."""
    from amanat.bootstrap import build_container

    settings = _settings()

    async def runner() -> T:
        container = build_container(settings)
        try:
            return await work(container)
        finally:
            await container.close()

    try:
        return asyncio.run(runner())
    except DomainError as exc:
        console.print(f"[red]{exc.code}:[/] {exc.message}")
        raise typer.Exit(code=1) from None


def _cli_actor() -> Actor:
    return Actor(type="cli", id=getpass.getuser(), user_agent="amanat-cli")


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

    async def work(container: Container) -> dict[str, Any]:
        actor = _cli_actor()
        partner = await container.partners.create_partner(actor, name=name, roles=role, mode=mode)
        issued = await container.partners.create_client(
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

    async def work(container: Container) -> str | None:
        issued = await container.partners.rotate_client_secret(_cli_actor(), client_id)
        return issued.secret

    typer.echo(json.dumps({"client_id": client_id, "client_secret": _run(work)}, indent=2))


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

    async def work(container: Container) -> dict[str, Any]:
        created = await container.operators.create_operator(
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


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key active; old keys verify until their tokens expire."""

    async def work(container: Container) -> dict[str, Any]:
        new_key, demoted = await container.signing_keys.rotate(_cli_actor())
        retired = await container.signing_keys.retire_expired(_cli_actor())
        return {
            "active": new_key.kid,
            "verifying_until": {
                k.kid: k.retire_after.isoformat() for k in demoted if k.retire_after
            },
            "retired": retired,
        }

    typer.echo(json.dumps(_run(work), indent=2))


@keys_app.command("status")
def keys_status() -> None:
    """List signing keys with their status."""

    async def work(container: Container) -> list[dict[str, Any]]:
        await container.signing_keys.retire_expired(_cli_actor())
        return [
            {
                "kid": k.kid,
                "status": k.status,
                "encrypted": k.encrypted,
                "created_at": k.created_at.isoformat(),
                "retire_after": k.retire_after.isoformat() if k.retire_after else None,
            }
            for k in await container.signing_keys.keys()
        ]

    typer.echo(json.dumps(_run(work), indent=2))


@sandbox_app.command("seed")
def sandbox_seed() -> None:
    """Create the sandbox partners, operator and signing key (idempotent); print credentials."""
    from amanat.sandbox_seed import seed

    settings = _settings()
    if settings.is_production:
        console.print("[red]The sandbox seed never runs in production.[/]")
        raise typer.Exit(code=2)
    if not settings.sandbox.seed:
        console.print("sandbox seeding disabled (AMANAT_SANDBOX__SEED=false)")
        return
    credentials = _run(seed)
    base = settings.http.public_url.rstrip("/")
    merchant, tpp, admin = (
        credentials["merchant"],
        credentials["tpp"],
        credentials["console_admin"],
    )
    out = Console()
    out.rule("[bold]amanat sandbox")
    out.print(f"API reference     {base}/docs")
    out.print(f"Health            {base}/healthz   ready: {base}/readyz")
    out.print(f"Token endpoint    {base}/oauth/token")
    out.print(f"Operator console  {base}/console")
    out.print()
    out.print("[bold]Sandbox merchant[/] (partner API)")
    out.print(f"  client_id      {merchant['client_id']}")
    out.print(f"  client_secret  {merchant['client_secret']}")
    out.print("[bold]Sandbox TPP[/] (open banking)")
    out.print(f"  client_id      {tpp['client_id']}")
    out.print(f"  client_secret  {tpp['client_secret']}")
    out.print(f"  redirect_uri   {tpp['redirect_uri']}")
    out.print("[bold]Console admin[/]")
    out.print(f"  email          {admin['email']}")
    out.print(f"  password       {admin['password']}")
    out.print(f"  TOTP secret    {admin['totp_secret']}  (code: amanat sandbox totp)")
    out.print()
    out.print("Try it:")
    out.print(
        f"  curl -s -u {merchant['client_id']}:{merchant['client_secret']} "
        f"-d grant_type=client_credentials {base}/oauth/token"
    )
    out.print(f"  (credentials saved in {settings.auth.sandbox_credentials_file})")
    out.rule()


@sandbox_app.command("totp")
def sandbox_totp() -> None:
    """Print the current TOTP code of the sandbox console admin."""
    import pyotp

    from amanat.sandbox_seed import _read

    data = _read(_settings().auth.sandbox_credentials_file) or {}
    secret = data.get("console_admin", {}).get("totp_secret")
    if not secret:
        console.print("[red]No sandbox admin yet: run `amanat sandbox seed`.[/]")
        raise typer.Exit(code=1)
    typer.echo(pyotp.TOTP(secret).now())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
