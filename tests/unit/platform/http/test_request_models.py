"""Every request model keeps JSON types: no non-integer JSON value is ever accepted where
an integer is expected, and no field needs the lax coercions strict mode turns off."""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import amanat.app  # noqa: F401  (imports every route module, so every request model)
from amanat.platform.http.schemas import RequestModel

NOT_INTEGERS = st.recursive(
    st.booleans()
    | st.none()
    | st.floats()
    | st.integers().map(float)
    | st.integers().map(str)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)


def _models() -> list[type[RequestModel]]:
    found: list[type[RequestModel]] = []
    pending = list(RequestModel.__subclasses__())
    while pending:
        model = pending.pop()
        found.append(model)
        pending += model.__subclasses__()
    return found


def _leaves(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict, typing.Literal):
        if origin is typing.Literal:
            return [typing.Literal]
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def _int_fields() -> list[tuple[type[RequestModel], str, bool]]:
    fields = []
    for model in _models():
        for name, info in model.model_fields.items():
            leaves = _leaves(info.annotation)
            if int in leaves:
                fields.append((model, name, type(None) in leaves))
    return fields


def test_the_walk_finds_the_amounts() -> None:
    names = {(m.__name__, n) for m, n, _ in _int_fields()}
    assert {("PaymentIn", "amount"), ("RefundIn", "amount"), ("TopUpIn", "amount")} <= names
    assert ("LimitBody", "per_transaction_limit") in names
    assert len(_models()) >= 10


def test_no_request_field_parses_from_a_json_string() -> None:
    """Strict mode refuses these in Python mode, which is how FastAPI validates bodies."""
    lax_only = (dt.datetime, dt.date, dt.time, dt.timedelta, set, frozenset, tuple, bytes)
    for model in _models():
        for name, info in model.model_fields.items():
            for leaf in _leaves(info.annotation):
                is_enum = isinstance(leaf, type) and issubclass(leaf, enum.Enum)
                assert leaf not in lax_only and not is_enum, (model.__name__, name, leaf)


@pytest.mark.parametrize(
    ("model", "name", "nullable"),
    _int_fields(),
    ids=lambda v: getattr(v, "__name__", str(v)),
)
@given(value=NOT_INTEGERS)
def test_no_non_integer_is_accepted_where_an_integer_is_expected(
    model: type[BaseModel], name: str, nullable: bool, value: Any
) -> None:
    if value is None and nullable:
        return
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: value})
    at_field = [e for e in caught.value.errors() if e["loc"][:1] == (name,)]
    assert at_field, caught.value.errors()
    assert all(e["type"] in {"int_type", "none_required"} or "type" in e["type"] for e in at_field)
