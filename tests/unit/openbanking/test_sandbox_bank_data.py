"""The sandbox bank's made-up data: valid identifiers, believable history, exact balances."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat.kernel.pakistan import bank_by_code, parse_cnic, parse_iban, parse_raast_id
from amanat.openbanking.domain.sandbox_bank_data import (
    TRANSACTION_CODES,
    SeedBank,
    SeedTransaction,
    generate,
    opening_balance_minor,
)

PKT = timezone(timedelta(hours=5))
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=PKT)
MONTHS = 6
# Six calendar months before 5 Dec is 5 Jun; a few days' slack either side of the month.
EARLIEST = NOW - timedelta(days=31 * MONTHS + 3)


@pytest.fixture(scope="module")
def bank() -> SeedBank:
    return generate(now=NOW, customers=12, months=MONTHS)


def _by_account(bank: SeedBank) -> dict[str, list[SeedTransaction]]:
    grouped: dict[str, list[SeedTransaction]] = defaultdict(list)
    for tx in bank.transactions:
        grouped[tx.account_id].append(tx)
    return grouped


def test_the_same_arguments_give_the_same_bank_whatever_the_global_random_state() -> None:
    random.seed(1)
    first = generate(now=NOW, customers=5, months=2, seed=7)
    random.seed(2)
    second = generate(now=NOW, customers=5, months=2, seed=7)
    assert first == second


def test_a_different_seed_gives_a_different_bank() -> None:
    one = generate(now=NOW, customers=4, months=2, seed=1)
    other = generate(now=NOW, customers=4, months=2, seed=2)
    assert one != other
    assert one.customers[2:] != other.customers[2:]
    assert one.transactions != other.transactions


def test_the_same_instant_in_another_zone_gives_the_same_bank() -> None:
    assert generate(now=NOW.astimezone(UTC), customers=3, months=2) == generate(
        now=NOW, customers=3, months=2
    )


def test_asking_for_more_customers_keeps_the_first_ones() -> None:
    few = generate(now=NOW, customers=3, months=1)
    more = generate(now=NOW, customers=6, months=1)
    assert more.customers[:3] == few.customers


def test_naive_now_and_empty_banks_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="customers"):
        generate(now=NOW, customers=0)
    with pytest.raises(ValueError, match="months"):
        generate(now=NOW, months=0)


@pytest.mark.parametrize("seed", [0, 7, 2026])
def test_ayesha_and_bilal_are_always_the_first_two_customers(seed: int) -> None:
    customers = generate(now=NOW, customers=3, months=1, seed=seed).customers
    ayesha, bilal = customers[0], customers[1]
    assert (ayesha.username, ayesha.full_name) == ("ayesha.khan", "Ayesha Khan")
    assert (bilal.username, bilal.full_name) == ("bilal.ahmed", "Bilal Ahmed")
    # NADRA's last CNIC digit: even for women, odd for men.
    assert int(ayesha.cnic[-1]) % 2 == 0
    assert int(bilal.cnic[-1]) % 2 == 1
    assert [c.full_name for c in generate(now=NOW, customers=1, months=1).customers] == [
        "Ayesha Khan"
    ]


def test_customer_identifiers_are_valid_and_unique(bank: SeedBank) -> None:
    customers = bank.customers
    assert len(customers) == 12
    for customer in customers:
        assert customer.id.startswith("bcu_")
        assert customer.username.isascii() and customer.username == customer.username.lower()
        assert parse_cnic(customer.cnic).value == customer.cnic and len(customer.cnic) == 13
        assert parse_raast_id(customer.mobile).value == customer.mobile
        assert 300 <= int(customer.mobile[3:6]) <= 349  # a real operator's prefix
    for attribute in ("id", "username", "cnic", "mobile"):
        values = [getattr(customer, attribute) for customer in customers]
        assert len(set(values)) == len(values), attribute


def test_accounts_are_at_real_banks_with_valid_unique_ibans(bank: SeedBank) -> None:
    customer_ids = {customer.id for customer in bank.customers}
    for account in bank.accounts:
        iban = parse_iban(account.iban)
        assert iban.value == account.iban and len(account.iban) == 24
        assert bank_by_code(account.bank_code) is not None
        assert iban.bank_code == account.bank_code
        assert account.customer_id in customer_ids
        assert account.id.startswith("bac_")
        assert (account.currency, account.account_type) == ("PKR", "Personal")
        assert account.subtype in {"CurrentAccount", "Savings"}
        assert account.title == account.title.upper()
        assert account.opened_on < EARLIEST.date()
    for attribute in ("id", "iban"):
        values = [getattr(account, attribute) for account in bank.accounts]
        assert len(set(values)) == len(values), attribute


def test_each_customer_has_one_to_three_accounts_at_distinct_banks(bank: SeedBank) -> None:
    banks_of: dict[str, list[str]] = defaultdict(list)
    for account in bank.accounts:
        banks_of[account.customer_id].append(account.bank_code)
    for customer in bank.customers:
        codes = banks_of[customer.id]
        assert 1 <= len(codes) <= 3
        assert len(set(codes)) == len(codes)


def test_at_most_one_raast_linked_account_per_customer_and_it_is_their_mobile(
    bank: SeedBank,
) -> None:
    mobile_of = {customer.id: customer.mobile for customer in bank.customers}
    linked = Counter(a.customer_id for a in bank.accounts if a.raast_id is not None)
    assert max(linked.values()) == 1
    for account in bank.accounts:
        if account.raast_id is not None:
            assert account.raast_id == mobile_of[account.customer_id]
    # The docs' two customers can always be paid by Raast ID.
    assert {mobile_of["bcu_0001"], mobile_of["bcu_0002"]} <= {a.raast_id for a in bank.accounts}


def test_transactions_are_positive_aware_and_inside_the_window(bank: SeedBank) -> None:
    for tx in bank.transactions:
        assert tx.id.startswith("btx_")
        assert tx.amount_minor > 0
        assert tx.booked_at.utcoffset() == timedelta(hours=5)
        assert EARLIEST <= tx.booked_at <= NOW
        assert tx.code in TRANSACTION_CODES
        assert tx.description == tx.description.upper()
        if tx.counterparty_iban is not None:
            parse_iban(tx.counterparty_iban)
    ids = [tx.id for tx in bank.transactions]
    assert len(set(ids)) == len(ids)


def test_transactions_are_ordered_by_account_then_time_then_id(bank: SeedBank) -> None:
    keys = [(tx.account_id, tx.booked_at, tx.id) for tx in bank.transactions]
    assert keys == sorted(keys)
    assert {tx.account_id for tx in bank.transactions} == {a.id for a in bank.accounts}


def test_salaried_customers_are_paid_once_a_month_into_each_current_account(
    bank: SeedBank,
) -> None:
    by_account = _by_account(bank)
    salaried = {
        account.customer_id
        for account in bank.accounts
        for tx in by_account[account.id]
        if tx.code == "SALARY"
    }
    assert {"bcu_0001", "bcu_0002"} <= salaried
    for account in bank.accounts:
        if account.customer_id not in salaried or account.subtype != "CurrentAccount":
            continue
        salaries = [tx for tx in by_account[account.id] if tx.code == "SALARY"]
        months = [(tx.booked_at.year, tx.booked_at.month) for tx in salaries]
        assert len(months) == MONTHS and len(set(months)) == MONTHS, account.id
        for tx in salaries:
            assert tx.credit and 60_000_00 <= tx.amount_minor <= 450_000_00
            assert tx.counterparty_name and tx.description.startswith("SALARY ")


def test_amounts_look_like_pakistani_banking(bank: SeedBank) -> None:
    for tx in bank.transactions:
        if tx.code == "ATM_CASH":
            assert 5_000_00 <= tx.amount_minor <= 25_000_00
            assert tx.amount_minor % 500_00 == 0
        elif tx.code == "MOBILE_TOPUP":
            assert 100_00 <= tx.amount_minor <= 2_000_00
        credit_codes = {"SALARY", "RAAST_IN", "PROFIT"}
        assert tx.credit == (tx.code in credit_codes), tx


def test_utility_bills_come_from_the_customers_own_city(bank: SeedBank) -> None:
    city_of = {customer.id: customer.city for customer in bank.customers}
    account_city = {account.id: city_of[account.customer_id] for account in bank.accounts}
    for tx in bank.transactions:
        if tx.code != "BILL_1BILL":
            continue
        karachi = account_city[tx.account_id] == "Karachi"
        assert (tx.merchant_name == "K-Electric") <= karachi
        if tx.merchant_name in {"SSGC", "SNGPL"}:
            assert (tx.merchant_name == "SSGC") == (
                account_city[tx.account_id] in {"Karachi", "Hyderabad", "Quetta"}
            )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    customers=st.integers(min_value=1, max_value=4),
    months=st.integers(min_value=1, max_value=3),
)
def test_running_balances_are_exact_and_never_negative(
    seed: int, customers: int, months: int
) -> None:
    bank = generate(now=NOW, customers=customers, months=months, seed=seed)
    for account_id, transactions in _by_account(bank).items():
        balance = opening_balance_minor(bank, account_id)
        assert balance >= 0
        for tx in transactions:
            balance += tx.amount_minor if tx.credit else -tx.amount_minor
            assert tx.balance_after_minor == balance, tx.id
            assert balance >= 0, tx.id


def test_opening_balance_of_an_unknown_account_is_an_error(bank: SeedBank) -> None:
    with pytest.raises(KeyError):
        opening_balance_minor(bank, "bac_nope")
