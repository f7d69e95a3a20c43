"""Money as integer minor units plus an ISO 4217 currency; floats never enter.

Amounts on the wire are integers of the currency's minor unit (paisa for PKR). The
exponent table covers the currencies a Pakistani platform meets; adding one is a one-line
change, and an unknown code is refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from amanat.kernel.errors import InvalidInput

CURRENCY_EXPONENTS: dict[str, int] = {
    "PKR": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AED": 2,
    "SAR": 2,
    "CNY": 2,
    # Statements from European correspondent banks carry these (camt balances, charges).
    "SEK": 2,
    "CHF": 2,
    "NOK": 2,
    "DKK": 2,
    "JPY": 0,
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
}

# Larger than any real payment, small enough that sums of many never overflow a BIGINT.
MAX_AMOUNT_MINOR = 10**15


def currency_exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidInput(
            f"'{currency}' is not a supported ISO 4217 currency code.",
            code="invalid_currency",
            reason="unsupported_currency",
        ) from None


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: ``amount`` minor units of ``currency``."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidInput(
                "Amounts are integers in minor units (paisa for PKR), never decimals.",
                code="invalid_amount",
                reason="not_an_integer",
            )
        if abs(self.amount) > MAX_AMOUNT_MINOR:
            raise InvalidInput(
                f"Amount exceeds the maximum of {MAX_AMOUNT_MINOR} minor units.",
                code="invalid_amount",
                reason="too_large",
            )
        currency_exponent(self.currency)

    @classmethod
    def of(cls, amount: int, currency: str = "PKR") -> Money:
        return cls(amount, currency)

    @classmethod
    def zero(cls, currency: str = "PKR") -> Money:
        return cls(0, currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidInput(
                f"Cannot combine {self.currency} with {other.currency}.",
                code="currency_mismatch",
            )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    def to_major_string(self) -> str:
        """``150000 PKR`` -> ``'1500.00'``: for display and statements, never arithmetic."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        whole, fraction = divmod(abs(self.amount), 10**exponent)
        if exponent == 0:
            return f"{sign}{whole}"
        return f"{sign}{whole}.{fraction:0{exponent}d}"

    @classmethod
    def from_major_string(cls, text: str, currency: str) -> Money:
        """``'1500.00'`` -> ``150000`` paisa, exactly; refuses more decimals than allowed."""
        exponent = currency_exponent(currency)
        raw = text.strip()
        negative = raw.startswith("-")
        raw = raw.lstrip("+-")
        whole, _, fraction = raw.partition(".")
        if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > exponent:
            raise InvalidInput(
                f"'{text}' is not an amount with at most {exponent} decimals.",
                code="invalid_amount",
                reason="bad_format",
            )
        minor = int(whole) * 10**exponent + int((fraction or "0").ljust(exponent, "0") or "0")
        return cls(-minor if negative else minor, currency)

    def __str__(self) -> str:
        return f"{self.to_major_string()} {self.currency}"
