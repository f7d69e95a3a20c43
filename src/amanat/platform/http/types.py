"""Pydantic field types for Pakistani identifiers, validated by the domain's rules.

A bad value fails request validation (so nothing executes and no idempotency result is
stored), with the family code (``invalid_iban``) and the precise reason in ``errors[]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

from amanat.kernel.errors import InvalidInput
from amanat.kernel.metadata import (
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LENGTH,
)
from amanat.kernel.pakistan import parse_cnic, parse_iban, parse_raast_id


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


_AMOUNT_TYPE_MESSAGE = (
    "Amounts are integers in paisa (minor units), e.g. 150000 for PKR 1,500.00; "
    "strings, decimals and booleans are refused."
)


def _integer_paisa(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Strict integer with a message that says what an amount is (``int_type`` alone
    leaves a partner guessing whether to send rupees, a string or a decimal)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", _AMOUNT_TYPE_MESSAGE)
    return handler(value)


MAX_AMOUNT = 10**13

Amount = Annotated[
    int,
    Field(
        strict=True,
        gt=0,
        le=MAX_AMOUNT,
        description="A JSON integer in minor units (paisa): 150000 is PKR 1,500.00. "
        "Strings, decimals (even 1500.0) and booleans are refused.",
        examples=[150000],
    ),
    WrapValidator(_integer_paisa),
]

Metadata = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=MAX_METADATA_KEY_LENGTH)],
        Annotated[str, Field(max_length=MAX_METADATA_VALUE_LENGTH)],
    ],
    Field(
        max_length=MAX_METADATA_KEYS,
        description=f"Your own key-value pairs, returned as given: at most {MAX_METADATA_KEYS} "
        f"keys of 1-{MAX_METADATA_KEY_LENGTH} characters, string values of at most "
        f"{MAX_METADATA_VALUE_LENGTH} characters.",
        examples=[{"order": "1001"}],
    ),
]
