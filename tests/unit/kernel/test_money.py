"""Money is exact: integer minor units, one currency, conserved under arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.kernel.errors import InvalidInput
from amanat.kernel.money import MAX_AMOUNT_MINOR, Money

amounts = st.integers(min_value=-(10**12), max_value=10**12)


def test_pkr_has_two_decimals() -> None:
    assert Money(150000, "PKR").to_major_string() == "1500.00"
    assert Money.from_major_string("1500.5", "PKR") == Money(150050, "PKR")
    assert str(Money(-5, "PKR")) == "-0.05 PKR"


@pytest.mark.parametrize("bad", [1.5, "100", True, None])
def test_non_integer_amounts_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        Money(bad, "PKR")  # type: ignore[arg-type]
    assert caught.value.code == "invalid_amount"


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        Money(1, "XYZ")
    assert caught.value.code == "invalid_currency"


def test_currencies_never_mix() -> None:
    with pytest.raises(InvalidInput) as caught:
        Money(1, "PKR") + Money(1, "USD")
    assert caught.value.code == "currency_mismatch"


def test_too_many_decimals_refused() -> None:
    with pytest.raises(InvalidInput):
        Money.from_major_string("1.234", "PKR")


def test_amount_bound() -> None:
    with pytest.raises(InvalidInput):
        Money(MAX_AMOUNT_MINOR + 1, "PKR")


@given(st.lists(amounts, max_size=30))
def test_sum_is_conserved(values: list[int]) -> None:
    total = Money.zero()
    for value in values:
        total = total + Money(value, "PKR")
    assert total.amount == sum(values)
    for value in values:
        total = total - Money(value, "PKR")
    assert total == Money.zero()


@given(amounts)
def test_major_string_round_trips(value: int) -> None:
    money = Money(value, "PKR")
    assert Money.from_major_string(money.to_major_string(), "PKR") == money
