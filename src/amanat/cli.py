"""The ``amanat`` command: serve, migrate, inspect configuration, and operate the platform."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import pkgutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

import amanat
from amanat.platform.cli import cli_actor as _cli_actor
from amanat.platform.cli import configure_logging as _configure_logging
from amanat.platform.cli import console, use_container_factory
from amanat.platform.cli import run as _run
from amanat.platform.cli import settings as _settings
from amanat.platform.settings import HttpSettings, Settings

if TYPE_CHECKING:
    from amanat.bootstrap import Container

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="amanat: payments and open-banking API platform for Pakistan.",
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration.")
sandbox_app = typer.Typer(no_args_is_help=True, help="The sandbox environment.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
subjects_app = typer.Typer(no_args_is_help=True, help="Data subjects: find by blind index, erase.")
retention_app = typer.Typer(no_args_is_help=True, help="Retention policies and legal holds.")
export_app = typer.Typer(no_args_is_help=True, help="Keys for and decryption of exports.")
db_app = typer.Typer(no_args_is_help=True, help="Database roles (PostgreSQL).")
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(audit_app, name="audit")
app.add_typer(subjects_app, name="subjects")
app.add_typer(retention_app, name="retention")
app.add_typer(export_app, name="export")
app.add_typer(db_app, name="db")


def _capability_commands() -> list[tuple[str, typer.Typer | Callable[..., None]]]:
    """Each capability's command groups (or single commands), from
    ``amanat/<capability>/cli.py``'s
    ``COMMANDS``: found by convention, without importing the rest of the application, so
    that ``amanat --help`` and every command start in a fraction of a second."""
    groups: list[tuple[str, typer.Typer | Callable[..., None]]] = []
    for package in sorted(m.name for m in pkgutil.iter_modules(amanat.__path__) if m.ispkg):
        if importlib.util.find_spec(f"amanat.{package}.cli") is None:
            continue
        groups.extend(getattr(importlib.import_module(f"amanat.{package}.cli"), "COMMANDS", ()))
    return groups


def _build_container(settings: Settings) -> Container:
    from amanat.bootstrap import build_container

    return build_container(settings)


for _name, _group in _capability_commands():
    if isinstance(_group, typer.Typer):
        app.add_typer(_group, name=_name)
    else:
        app.command(_name)(_group)  # a single command, not a group
use_container_factory(_build_container)


def refuse_insecure_production(settings: Settings) -> None:
    problems = settings.production_problems()
    if problems:
        console.print("[bold red]amanat refuses to start in production:[/]")
        for problem in problems:
            console.print(f"  - {problem}")
        raise typer.Exit(code=2)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    settings = _settings()
    typer.echo(json.dumps(settings.masked(), indent=2))
    for problem in settings.production_problems():
        console.print(f"[yellow]production problem:[/] {problem}")


@config_app.command("docs")
def config_docs(
    path: Path = typer.Option(
        Path("docs/configuration.md"), help="The page whose settings table to rewrite."
    ),
    check: bool = typer.Option(False, help="Only compare; exit 1 when the table is stale."),
) -> None:
    """Regenerate the table of every AMANAT_ setting in docs/configuration.md from the
    settings model (names, types, defaults, descriptions)."""
    from amanat.platform.settings_docs import render_table, rewrite

    page = path.read_text()
    updated = rewrite(page, render_table())
    if check:
        if updated != page:
            console.print(f"[red]{path} is stale: run `amanat config docs`.[/]")
            raise typer.Exit(code=1)
        typer.echo(f"{path} is up to date")
        return
    if updated != page:
        path.write_text(updated)
    typer.echo(f"{path}: settings table {'rewritten' if updated != page else 'unchanged'}")


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the latest migration."""
    from amanat.platform.db.migrate import upgrade

    settings = _settings()
    refuse_insecure_production(settings)
    _configure_logging(settings)
    upgrade(settings.database.migration_url or settings.database.url)
    console.print("[green]database migrated to head[/]")
    if settings.database.app_role and not settings.database.is_sqlite:
        asyncio.run(_with_owner(settings, _grant(settings.database.app_role)))
        console.print(f"[green]granted role {settings.database.app_role}[/]")


def _grant(role: str) -> Callable[[Any], Awaitable[None]]:
    from amanat.platform.db.roles import grant_app_role

    async def work(conn: Any) -> None:
        await grant_app_role(conn, role)

    return work


async def _with_owner(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work`` on one connection as the schema owner (``database.migration_url``)."""
    from amanat.platform.db.engine import create_engine

    url = settings.database.migration_url or settings.database.url
    engine = create_engine(settings.database.model_copy(update={"url": url}))
    try:
        async with engine.begin() as conn:
            return await work(conn)
    finally:
        await engine.dispose()


@db_app.command("create-roles")
def db_create_roles(
    password: str | None = typer.Option(
        None,
        envvar="AMANAT_APP_ROLE_PASSWORD",
        help="Password for a newly created application role (or set AMANAT_APP_ROLE_PASSWORD).",
    ),
) -> None:
    """Create the application role (database.app_role) if absent and grant it only what it
    needs: no UPDATE or DELETE on the audit tables. Run with the owner's credentials."""
    from amanat.platform.db.roles import create_app_role, grant_app_role

    settings = _settings()
    _configure_logging(settings)
    role = settings.database.app_role
    if settings.database.is_sqlite or not role:
        console.print("[red]Set AMANAT_DATABASE__APP_ROLE and use PostgreSQL.[/]")
        raise typer.Exit(code=2)

    async def work(conn: Any) -> bool:
        created = await create_app_role(conn, role, password)
        await grant_app_role(conn, role)
        return created

    try:
        created = asyncio.run(_with_owner(settings, work))
    except Exception as exc:  # noqa: BLE001 - a clear line, not a traceback
        typer.echo(f"could not create or grant role {role}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"role {role} {'created' if created else 'already existed'}; grants applied")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings)."),
    workers: int = typer.Option(1, min=1, help="Server processes."),
) -> None:
    """Serve the HTTP APIs, portal and console."""
    from amanat.platform.http import listeners
    from amanat.platform.http.client_address import uvicorn_proxy_options

    # Through the environment, so every server process (each reads its own settings)
    # binds here and, unless AMANAT_HTTP__PUBLIC_URL says otherwise, its URLs follow.
    if host is not None:
        os.environ["AMANAT_HTTP__HOST"] = host
    if port is not None:
        os.environ["AMANAT_HTTP__PORT"] = str(port)
    settings = _settings()
    refuse_insecure_production(settings)
    _configure_logging(settings)
    from amanat.platform.http.header_limits import REQUEST_LINE_ALLOWANCE, HeaderLimitedProtocol

    try:
        # Several workers each get a socket of their own: connections spread evenly.
        listeners.run(
            "amanat.asgi:app",
            factory=True,
            host=settings.http.host,
            port=settings.http.port,
            workers=workers,
            # With several workers uvicorn restarts one that has not answered its health check
            # in 5 s; importing the application takes longer than that on a busy machine, and
            # the restarts then never end.
            timeout_worker_healthcheck=60,
            # Header count and size are capped while parsing (the stock protocols do not cap
            # them); the h11 limit bounds the same for a server started with http="h11".
            http=HeaderLimitedProtocol,
            h11_max_incomplete_event_size=settings.http.max_header_bytes + REQUEST_LINE_ALLOWANCE,
            access_log=False,
            log_config=None,
            server_header=False,
            **uvicorn_proxy_options(settings),
        )
    except listeners.AddressInUse as exc:
        typer.echo(f"cannot serve: {exc}", err=True)
        raise typer.Exit(code=1) from None


@app.command()
def worker() -> None:
    """Run the background worker: rail submissions and enquiries, audit seals, key
    retirement, re-encryption, retention. Run as many as you like."""
    import signal

    from amanat.bootstrap import build_container

    settings = _settings()
    refuse_insecure_production(settings)
    _configure_logging(settings)

    async def main_loop() -> None:
        from amanat.platform.startup_heap import freeze_startup_heap

        container = build_container(settings)
        freeze_startup_heap()  # what start-up left, out of the collector's sight
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await container.run_worker(stop)
        finally:
            await container.close()

    # uvloop: about an eighth less CPU per webhook delivery than the default loop.
    import uvloop

    uvloop.run(main_loop())


@app.command("sandbox-rail")
def sandbox_rail_command(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8001),
) -> None:
    """Run the sandbox Raast rail as its own process (for failure drills); point amanat at
    it with AMANAT_RAIL__BASE_URL=http://127.0.0.1:8001 and AMANAT_RAIL__MOUNT_SANDBOX=false."""
    import uvicorn

    from amanat.asgi import sandbox_rail

    settings = _settings()
    if settings.is_production:
        console.print("[red]The sandbox rail never runs in production.[/]")
        raise typer.Exit(code=2)
    _configure_logging(settings)
    uvicorn.run(
        sandbox_rail(settings),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        server_header=False,
    )


@sandbox_app.command("seed")
def sandbox_seed() -> None:
    """Create the sandbox partners, operator and signing key (idempotent); print credentials."""
    from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD
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
    out = Console(soft_wrap=True, highlight=False)
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
    out.print("  signing key    in the credentials file; sign a payment request body with")
    out.print("                 .venv/bin/amanat sandbox jws body.json  (x-jws-signature)")
    out.print(
        "[bold]Sandbox customers[/] (encrypted at rest; answered masked by "
        "GET /v1/customers/{id}; `amanat subjects find --help` looks one up)"
    )
    for customer in credentials.get("customers", []):
        out.print(f"  {customer['id']}  {customer['name']}")
    out.print(
        "[bold]Sandbox bank customers[/] (PSUs who authorise TPPs' consents at "
        f"{base}/oauth/authorize; docs/open-banking.md)"
    )
    out.print(f"  ayesha.khan, bilal.ahmed   password {SANDBOX_PSU_PASSWORD}")
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
    # Another shell has none of make run's environment: name the URL when it is not the
    # default, so the command finds this server's rail.
    where = "" if base == HttpSettings().public_url else f"AMANAT_HTTP__PUBLIC_URL={base} "
    out.print(
        f"Rail faults: {where}.venv/bin/amanat sandbox faults set --downtime 30 | "
        f"--latency-ms 800 | --error-rate 0.2; {where}.venv/bin/amanat sandbox faults "
        "show / clear (docs/sandbox-rail.md)"
    )
    out.rule()


faults_app = typer.Typer(
    no_args_is_help=True,
    help="Inject faults into the sandbox rail (downtime, latency, random 503s); "
    "docs/sandbox-rail.md.",
)
sandbox_app.add_typer(faults_app, name="faults")


def _rail_faults(body: dict[str, Any] | None) -> None:
    """GET (body None) or POST the sandbox rail's /admin/faults and print the answer."""
    import httpx

    settings = _settings()
    if settings.is_production:
        console.print("[red]The sandbox rail never runs in production.[/]")
        raise typer.Exit(code=2)
    base = (
        settings.rail.base_url or f"{settings.http.public_url.rstrip('/')}/sandbox-rail"
    ).rstrip("/")
    headers = {"Rail-Admin-Token": settings.rail.admin_token.get_secret_value()}
    try:
        with httpx.Client(timeout=10, trust_env=False) as http:
            if body is None:
                response = http.get(f"{base}/admin/faults", headers=headers)
            else:
                response = http.post(f"{base}/admin/faults", headers=headers, json=body)
    except httpx.HTTPError as exc:
        console.print(
            f"[red]The sandbox rail at {base} did not answer ({type(exc).__name__}); is "
            "`make run` (or `amanat sandbox-rail`) running? AMANAT_RAIL__BASE_URL or "
            "AMANAT_HTTP__PUBLIC_URL says where it is.[/]"
        )
        raise typer.Exit(code=1) from None
    if response.status_code != 200:
        console.print(f"[red]The sandbox rail answered {response.status_code}: {response.text}[/]")
        raise typer.Exit(code=1)
    typer.echo(json.dumps(response.json(), indent=2))


@faults_app.command("show")
def faults_show() -> None:
    """Print the rail's current faults."""
    _rail_faults(None)


@faults_app.command("set")
def faults_set(
    downtime: int | None = typer.Option(
        None, min=0, max=86_400, help="Seconds every rail call answers 503 (0 ends it)."
    ),
    latency_ms: int | None = typer.Option(
        None, min=0, max=600_000, help="Delay added to every rail answer, in milliseconds."
    ),
    error_rate: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Share of rail calls answered 503 at random (0 to 1)."
    ),
) -> None:
    """Set one or more faults; the others stay as they are."""
    body = {
        key: value
        for key, value in (
            ("downtime_seconds", downtime),
            ("latency_ms", latency_ms),
            ("error_rate", error_rate),
        )
        if value is not None
    }
    if not body:
        console.print("[red]Give --downtime, --latency-ms or --error-rate.[/]")
        raise typer.Exit(code=2)
    _rail_faults(body)


@faults_app.command("clear")
def faults_clear() -> None:
    """Clear every fault: the rail is up, fast and reliable again."""
    _rail_faults({"reset": True})


@sandbox_app.command("jws")
def sandbox_jws(
    body: Path | None = typer.Argument(
        None, help="File holding the exact request body; standard input when left out."
    ),
) -> None:
    """Print the x-jws-signature the sandbox TPP app would send with this request body."""
    import time

    from amanat.sandbox_seed import _read, sign_as_sandbox_tpp

    tpp = (_read(_settings().auth.sandbox_credentials_file) or {}).get("tpp", {})
    if "signing_key" not in tpp:
        console.print("[red]No sandbox TPP signing key yet: run `amanat sandbox seed`.[/]")
        raise typer.Exit(code=1)
    raw = body.read_bytes() if body is not None else sys.stdin.buffer.read()
    typer.echo(sign_as_sandbox_tpp(raw, tpp, int(time.time())))


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


# Where `make run` keeps the sandbox's audit witness (the Makefile sets it): beside the
# sandbox credentials, in var/.
SANDBOX_WITNESS_NAME = "audit-witness.jsonl"


@audit_app.command("verify")
def audit_verify(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    witness: Path | None = typer.Option(
        None,
        help="Witness file to check against instead of AMANAT_AUDIT__WITNESS_FILE (e.g. what "
        "an HTTP witness received, as JSON Lines).",
    ),
) -> None:
    """Walk the hash chain, the seals and the witness; report every bad record.

    Exit status: 0 the log is intact, 1 findings (each names its record), 2 the check could
    not run (no database, unreadable witness file).
    """
    from amanat.platform.audit.witness import iter_witness_file

    settings = _settings()
    sandbox_witness = settings.auth.sandbox_credentials_file.parent / SANDBOX_WITNESS_NAME
    if (
        witness is None
        and not settings.is_production
        and settings.audit.witness_file is None
        and settings.audit.witness_url is None
        and sandbox_witness.is_file()
    ):
        # What `make run` writes to: a bare `amanat audit verify` after it checks against
        # the witness too, instead of silently checking the database alone.
        witness = sandbox_witness
        typer.echo(f"(checking against the sandbox witness {witness})", err=True)

    async def work(container: Container) -> Any:
        lines = iter_witness_file(witness) if witness is not None else None
        return await container.audit_integrity.verify(lines)

    if witness is not None and not witness.is_file():
        typer.echo(f"witness file {witness} does not exist", err=True)
        raise typer.Exit(code=2)
    try:
        report = _run(work)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - verify reports, it never shows a traceback
        typer.echo(f"audit verification could not run: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "records": report.checked,
                    "head": report.head_seq,
                    "seals": report.seals,
                    "witnessed": report.witnessed,
                    "findings": [
                        {"seq": f.seq, "kind": f.kind, "detail": f.detail} for f in report.findings
                    ],
                },
                indent=2,
            )
        )
    elif report.ok:
        witnessed = (
            "no witness configured"
            if report.witnessed is None
            else f"{report.witnessed} witnessed seals match"
        )
        typer.echo(
            f"audit log OK: {report.checked} records, head {report.head_seq}, "
            f"{report.seals} seals verified, {witnessed}"
        )
    else:
        typer.echo(
            f"audit log TAMPERED: {len(report.findings)} finding(s) in {report.checked} records"
        )
        for finding in report.findings:
            where = "witness" if finding.seq == 0 else f"record {finding.seq}"
            typer.echo(f"  at {where} ({finding.kind}): {finding.detail}")
    if not report.ok:
        raise typer.Exit(code=1)


@audit_app.command("seal")
def audit_seal() -> None:
    """Sign the current head of the chain with the Ed25519 seal key."""

    async def work(container: Container) -> Any:
        return await container.audit_integrity.seal(_cli_actor())

    from amanat.platform.audit.integrity import WitnessUnavailable

    try:
        seal = _run(work)
    except WitnessUnavailable as exc:
        console.print(f"[red]sealed, but a witness did not take the seal ({exc}); retry[/]")
        raise typer.Exit(code=1) from None
    typer.echo(
        "nothing new to seal" if seal is None else f"sealed record {seal.seq} head {seal.head_hash}"
    )


@audit_app.command("export-seals")
def audit_export_seals() -> None:
    """Print every seal as JSON, to keep a copy outside the database."""

    async def work(container: Container) -> list[dict[str, Any]]:
        return await container.audit_integrity.export_seals()

    typer.echo(json.dumps(_run(work), indent=2))


def _write_export(path: Path, data: bytes, recipients: list[str]) -> str:
    """Encrypt for the recipients (required in production) and write with mode 0600."""
    from amanat.platform.crypto.exports import encrypt_for

    settings = _settings()
    recipients = recipients or settings.crypto.export_recipients
    if recipients:
        data = encrypt_for(data, recipients)
        note = f"encrypted for {len(recipients)} age recipient(s)"
    elif settings.is_production:
        console.print(
            "[red]Production exports must be encrypted: set "
            "AMANAT_CRYPTO__EXPORT_RECIPIENTS or pass --recipient.[/]"
        )
        raise typer.Exit(code=2)
    else:
        note = "NOT encrypted (sandbox; pass --recipient age1... to encrypt)"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return note


@audit_app.command("export")
def audit_export(
    out: Path = typer.Option(..., help="File to write (JSON Lines, age-encrypted)."),
    recipient: list[str] = typer.Option([], help="age recipient (repeatable)."),
) -> None:
    """Export the whole audit log with hashes and seals, for keeping outside the database."""

    async def work(container: Container) -> bytes:
        records = await container.audit_integrity.export_records()
        seals = await container.audit_integrity.export_seals()
        lines = [json.dumps({"type": "record", **r}, sort_keys=True) for r in records]
        lines += [json.dumps({"type": "seal", **s}, sort_keys=True) for s in seals]
        return ("\n".join(lines) + "\n").encode()

    note = _write_export(out, _run(work), recipient)
    typer.echo(f"wrote {out}: {note}")


@export_app.command("keygen")
def export_keygen() -> None:
    """Make an age key pair for receiving exports (keep the secret key offline)."""
    from amanat.platform.crypto.exports import generate_identity

    identity, public = generate_identity()
    typer.echo(json.dumps({"recipient": public, "identity": identity}, indent=2))


@export_app.command("decrypt")
def export_decrypt(
    path: Path,
    identity_file: Path = typer.Option(..., help="File holding AGE-SECRET-KEY-1..."),
) -> None:
    """Decrypt an export to standard output."""
    from amanat.platform.crypto.exports import ExportEncryptionError, decrypt_with

    try:
        data = decrypt_with(path.read_bytes(), identity_file.read_text())
    except ExportEncryptionError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from None
    sys.stdout.buffer.write(data)


@audit_app.command("init-seal-key")
def audit_init_seal_key() -> None:
    """Create the Ed25519 seal key file (refuses to overwrite) and print its public key."""
    from amanat.platform.audit.seals import Ed25519SealSigner

    path = _settings().crypto.audit_seal_key_file
    existed = path.exists()
    signer = Ed25519SealSigner.from_file(path, create=True)
    typer.echo(
        json.dumps(
            {"path": str(path), "created": not existed, "public_key": signer.public_key}, indent=2
        )
    )


@subjects_app.command("find")
def subjects_find(
    iban: str | None = typer.Option(None),
    raast_id: str | None = typer.Option(None),
    cnic: str | None = typer.Option(None),
) -> None:
    """Find data subjects by IBAN, Raast ID or CNIC through the blind index (masked output)."""
    from amanat.kernel.masking import mask_cnic, mask_iban, mask_phone

    field, value = next(
        ((f, v) for f, v in (("iban", iban), ("raast_id", raast_id), ("cnic", cnic)) if v),
        (None, None),
    )
    if field is None or value is None:
        console.print("[red]Give one of --iban, --raast-id, --cnic.[/]")
        raise typer.Exit(code=2)

    async def work(container: Container) -> list[dict[str, Any]]:
        found = await container.protection.find(field, value, partner_id=None)
        result = []
        for record in found:
            details = await container.protection.reveal(record.id, partner_id=None)
            result.append(
                {
                    "id": details.id,
                    "partner_id": details.partner_id,
                    "name": details.name,
                    "iban": mask_iban(details.iban) if details.iban else None,
                    "raast_id": mask_phone(details.raast_id) if details.raast_id else None,
                    "cnic": mask_cnic(details.cnic) if details.cnic else None,
                }
            )
        return result

    typer.echo(json.dumps(_run(work), indent=2))


@subjects_app.command("erase")
def subjects_erase(
    subject_id: str, reason: str = typer.Option(..., help="Why (recorded in the audit log).")
) -> None:
    """Crypto-shred a data subject: their key is deleted, their records stay unreadable."""

    async def work(container: Container) -> None:
        await container.protection.erase_subject(_cli_actor(), subject_id, reason=reason)

    _run(work)
    typer.echo(f"{subject_id} erased; its personal fields can no longer be decrypted")


@retention_app.command("run")
def retention_run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report what would go."),
) -> None:
    """Apply the retention policies (delete or crypto-shred what is due)."""

    async def work(container: Container) -> tuple[int, list[Any]]:
        outcomes = await container.retention.run(_cli_actor(), dry_run=dry_run)
        return container.retention.policies.version, outcomes

    version, outcomes = _run(work)
    out = Console(soft_wrap=True, highlight=False)
    out.print(f"retention policy version {version}{' (dry run)' if dry_run else ''}")
    for o in outcomes:
        verb = "would" if dry_run else "did"
        line = f"  {o.data_class:22} {o.action:7}"
        if o.note:
            line += f" {o.note}"
        else:
            line += f" due {o.due}, {verb} {o.action} {o.done if not dry_run else o.due}"
            line += f", held {o.held}"
        out.print(line)


@retention_app.command("hold")
def retention_hold(data_class: str, target_id: str, reason: str = typer.Option(...)) -> None:
    """Place a legal hold: the record is exempt from retention until released."""

    async def work(container: Container) -> str:
        return await container.retention.hold(_cli_actor(), data_class, target_id, reason)

    typer.echo(_run(work))


@retention_app.command("release")
def retention_release(data_class: str, target_id: str) -> None:
    """Release a legal hold."""

    async def work(container: Container) -> int:
        return await container.retention.release(_cli_actor(), data_class, target_id)

    typer.echo(f"released {_run(work)} hold(s)")


@app.command("timeline")
def timeline_command(
    subject_id: str = typer.Argument(
        ..., help="A payment's id (its end-to-end id), a refund's, a consent's or an event's."
    ),
) -> None:
    """Print everything amanat knows of one transaction, oldest first: the API requests
    (with idempotency replays), state transitions, ledger journals and holds, rail traffic,
    webhook events and attempts, reconciliation, consents and audited actions. Exit 1 when
    nothing is known of the id. Personal data is masked (docs/troubleshooting.md)."""
    from rich.table import Table
    from rich.text import Text

    from amanat.platform.timeline import Timeline, TimelineService

    async def work(container: Container) -> Timeline:
        return await container.get(TimelineService).timeline(subject_id)

    timeline = _run(work)
    if not timeline.found:
        console.print(
            Text(
                f"Nothing is known of {subject_id!r}: no payment, refund, consent, event or "
                "audited action has that id (the end-to-end id of a payment is its id; "
                "search by reference or customer in the console).",
                style="red",
            )
        )
        raise typer.Exit(code=1)
    table = Table(
        title=f"timeline of {timeline.subject_id}: {len(timeline.entries)} entries, oldest "
        "first, times in UTC",
        show_lines=False,
        expand=False,
    )
    for column in ("time", "source", "what", "actor", "request id", "facts"):
        table.add_column(column, overflow="fold")
    for entry in timeline.entries:
        what = Text(entry.title)
        if entry.detail:
            what.append(f"\n{entry.detail}", style="dim")
        if entry.subject_id != timeline.subject_id:
            what.append(f"\n→ {entry.subject_id}", style="cyan")
        table.add_row(
            entry.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            entry.source,
            what,
            Text(entry.actor),
            Text(entry.request_id or entry.trace_id or ""),
            Text("\n".join(f"{key}: {value}" for key, value in entry.facts.items())),
        )
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
