"""Pydantic field types for Pakistani identifiers, validated by the domain's rules.

A bad value fails request validation (so nothing executes and no idempotency result is
stored), with the family code (``invalid_iban``) and the precise reason in ``errors[]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from amanat.domain.errors import InvalidInput
from amanat.domain.pakistan import parse_cnic, parse_iban, parse_raast_id


def _checked(parse: Callable[[str], Any]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        try:
            return str(parse(value))
        except InvalidInput as exc:
            raise PydanticCustomError(exc.code, exc.message, {"reason": exc.reason}) from None

    return validate


Iban = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["PK36SCBL0000001123456702"]),
    AfterValidator(_checked(parse_iban)),
]
RaastId = Annotated[
    str,
    Field(min_length=1, max_length=32, examples=["+923001234567"]),
    AfterValidator(_checked(parse_raast_id)),
]
Cnic = Annotated[
    str,
    Field(min_length=1, max_length=32, examples=["35202-1234567-3"]),
    AfterValidator(_checked(parse_cnic)),
]
