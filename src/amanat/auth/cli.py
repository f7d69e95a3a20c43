"""Auth's commands: the token-signing key ring, and the data keys beside it."""

from __future__ import annotations

import json
from typing import Any

import typer

from amanat.auth.signing_keys import SigningKeyService
from amanat.platform.cli import cli_actor as _cli_actor
from amanat.platform.cli import run as _run
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.registry import Services

keys_app = typer.Typer(no_args_is_help=True, help="Token-signing and data-encryption keys.")

COMMANDS = (("keys", keys_app),)
"""The command groups the root ``amanat`` command adds (found by convention)."""


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key active; old keys verify until their tokens expire."""

    async def work(container: Services) -> dict[str, Any]:
        new_key, demoted = await container.get(SigningKeyService).rotate(_cli_actor())
        retired = await container.get(SigningKeyService).retire_expired(_cli_actor())
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
    """Signing keys, and data keys with how many rows each one still encrypts."""

    async def work(container: Services) -> dict[str, Any]:
        await container.get(SigningKeyService).retire_expired(_cli_actor())
        signing = [
            {
                "kid": k.kid,
                "status": k.status,
                "encrypted": k.encrypted,
                "created_at": k.created_at.isoformat(),
                "retire_after": k.retire_after.isoformat() if k.retire_after else None,
            }
            for k in await container.get(SigningKeyService).keys()
        ]
        data_keys, subject_keys = await container.get(DataProtectionService).status()
        return {
            "signing_keys": signing,
            "data_keys": [
                {
                    "id": s.key.id,
                    "purpose": s.key.purpose,
                    "status": s.key.status,
                    "master_key": s.key.master_key_id,
                    "rows": s.rows,
                    "rows_total": s.total,
                }
                for s in data_keys
            ],
            "subject_keys": subject_keys,
        }

    typer.echo(json.dumps(_run(work), indent=2))


@keys_app.command("rotate-data-key")
def keys_rotate_data_key(
    reencrypt: bool = typer.Option(True, help="Re-encrypt old rows right away."),
) -> None:
    """Make a new data key primary; re-encrypt rows under old keys; retire unused keys."""

    async def work(container: Services) -> dict[str, Any]:
        actor = _cli_actor()
        await container.get(DataProtectionService).ensure_keys(actor)
        new_key, previous = await container.get(DataProtectionService).rotate_data_key(actor)
        moved = await container.get(DataProtectionService).reencrypt(actor) if reencrypt else {}
        retired = await container.get(DataProtectionService).retire_unused(actor)
        return {
            "active": new_key.id,
            "previous": previous,
            "reencrypted": moved,
            "retired": retired,
        }

    typer.echo(json.dumps(_run(work), indent=2))


@keys_app.command("reencrypt")
def keys_reencrypt(batch_size: int = typer.Option(500, min=1, max=10_000)) -> None:
    """Resume re-encryption of rows still under decrypt-only keys; retire unused keys."""

    async def work(container: Services) -> dict[str, Any]:
        actor = _cli_actor()
        moved = await container.get(DataProtectionService).reencrypt(actor, batch_size=batch_size)
        return {
            "reencrypted": moved,
            "retired": await container.get(DataProtectionService).retire_unused(actor),
        }

    typer.echo(json.dumps(_run(work), indent=2))
