"""Operator accounts for tests of the operator API and the console."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pyotp
from tests.support.oauth import ACTOR

from amanat.bootstrap import Container

PASSWORD = "correct horse battery staple"

NewClient = Callable[[], httpx.AsyncClient]


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    totp_secret: str
    roles: tuple[str, ...] = ()


async def create_account(container: Container, *roles: str, email: str | None = None) -> Account:
    address = email or f"{'-'.join(roles)}-{len(roles)}@bank.example.pk"
    created = await container.operators.create_operator(
        ACTOR, email=address, name=f"Test {' '.join(roles)}", roles=list(roles), password=PASSWORD
    )
    return Account(created.operator.id, created.operator.email, created.totp_secret, roles)


def totp(container: Container, account: Account) -> str:
    return pyotp.TOTP(account.totp_secret).at(container.clock.now())
