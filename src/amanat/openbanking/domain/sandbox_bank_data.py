"""Made-up but believable data for the sandbox bank behind the CoreBanking port.

Third-party providers (TPPs) build against the sandbox before they touch a real bank, and a
tester in Pakistan spots fake data at once: an IBAN that fails its check digits, a CNIC
whose last digit says "man" for Ayesha, a salary of PKR 13.37, a K-Electric bill in
Lahore. This module makes up retail customers, their accounts at real Pakistani banks
(valid IBANs from the SBP bank table) and months of PKR transactions that read like a
statement: salaries near month end, 1Bill utility payments from the city's own company,
card spends at local chains, round ATM withdrawals, Raast transfers, top-ups, savings
profit with withholding tax, and the odd bank charge.

It is pure and deterministic: the same ``(now, customers, months, seed)`` always gives
the same :class:`SeedBank`. It never reads the clock or the global ``random`` state, so
docs and browser tests can rely on Ayesha Khan and Bilal Ahmed, and on the first customers
staying the same when more are asked for.

Everything here is fiction, but it has the shape of personal data (names, CNICs, mobile
numbers, IBANs), so it is treated as such: the adapter that stores it encrypts it like any
customer's data. Nothing here stores anything.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import TypeVar

from amanat.kernel.pakistan import make_iban, parse_cnic, parse_raast_id

__all__ = [
    "TRANSACTION_CODES",
    "SeedAccount",
    "SeedBank",
    "SeedCustomer",
    "SeedTransaction",
    "generate",
    "opening_balance_minor",
]

# Asia/Karachi has kept +05:00 all year since 2009; a fixed offset keeps this module free
# of the tz database, and the output is the same on every machine.
PKT = timezone(timedelta(hours=5))

TRANSACTION_CODES: frozenset[str] = frozenset(
    {
        "SALARY",
        "RAAST_IN",
        "RAAST_OUT",
        "IBFT_OUT",
        "BILL_1BILL",
        "CARD_POS",
        "CARD_ECOM",
        "ATM_CASH",
        "MOBILE_TOPUP",
        "PROFIT",
        "CHARGES",
    }
)

CURRENT = "CurrentAccount"
SAVINGS = "Savings"

_PAISA = 100  # PKR has two decimals; amounts below are built in rupees and scaled once.

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeedCustomer:
    id: str
    username: str
    full_name: str
    cnic: str
    mobile: str
    city: str


@dataclass(frozen=True, slots=True)
class SeedAccount:
    id: str
    customer_id: str
    bank_code: str
    iban: str
    title: str
    currency: str
    account_type: str
    subtype: str
    nickname: str
    opened_on: date
    raast_id: str | None


@dataclass(frozen=True, slots=True)
class SeedTransaction:
    id: str
    account_id: str
    booked_at: datetime
    amount_minor: int
    credit: bool
    code: str
    description: str
    merchant_name: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    balance_after_minor: int


@dataclass(frozen=True, slots=True)
class SeedBank:
    customers: tuple[SeedCustomer, ...]
    accounts: tuple[SeedAccount, ...]
    transactions: tuple[SeedTransaction, ...]


# --------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _City:
    name: str
    short: str  # how card networks and ATMs abbreviate it on a statement line
    cnic_districts: tuple[str, ...]  # NADRA's first five digits for people registered there
    electricity: str  # the distribution company that bills this city
    gas: str
    area_code: str  # PTCL landline prefix, part of the PTCL account reference
    areas: tuple[str, ...]  # where ATMs are, as the ATM names itself
    weight: int  # cards in the deck customers' cities are dealt from (see generate)


# fmt: off
_CITIES: tuple[_City, ...] = (
    _City("Karachi", "KHI", ("42101", "42201", "42301", "42401", "42501"), "K-Electric", "SSGC",
          "021", ("DHA PH5", "CLIFTON BLK 5", "GULSHAN-E-IQBAL", "PECHS BLK 2", "NORTH NAZIMABAD",
                  "TARIQ RD", "BAHADURABAD", "SADDAR"), 4),
    _City("Lahore", "LHR", ("35201", "35202"), "LESCO", "SNGPL",
          "042", ("GULBERG III", "DHA PH6", "JOHAR TOWN", "MODEL TOWN", "MM ALAM RD",
                  "LIBERTY MKT", "WAPDA TOWN", "BAHRIA TOWN"), 3),
    _City("Islamabad", "ISB", ("61101",), "IESCO", "SNGPL",
          "051", ("BLUE AREA", "F-7 MARKAZ", "F-10 MARKAZ", "G-9 MARKAZ", "I-8 MARKAZ", "E-11"), 2),
    _City("Rawalpindi", "RWP", ("37405", "37406"), "IESCO", "SNGPL",
          "051", ("SADDAR", "SATELLITE TOWN", "COMMITTEE CHOWK", "BAHRIA TOWN PH7",
                  "CHAKLALA SCH 3"), 2),
    _City("Faisalabad", "FSD", ("33100", "33102", "33104"), "FESCO", "SNGPL",
          "041", ("D GROUND", "KOHINOOR CITY", "SUSAN RD", "PEOPLES COLONY"), 1),
    _City("Multan", "MUL", ("36302", "36303"), "MEPCO", "SNGPL",
          "061", ("CANTT", "GULGASHT", "BOSAN RD", "NEW MULTAN"), 1),
    _City("Peshawar", "PEW", ("17301",), "PESCO", "SNGPL",
          "091", ("UNIVERSITY TOWN", "HAYATABAD PH3", "SADDAR", "CANTT"), 1),
    _City("Quetta", "QTA", ("54400",), "QESCO", "SSGC",
          "081", ("JINNAH RD", "CANTT", "SATELLITE TOWN", "SARIAB RD"), 1),
    _City("Hyderabad", "HYD", ("41303", "41304"), "HESCO", "SSGC",
          "022", ("LATIFABAD", "QASIMABAD", "SADDAR", "AUTO BHAN RD"), 1),
    _City("Sialkot", "SKT", ("34603",), "GEPCO", "SNGPL",
          "052", ("CANTT", "PARIS RD", "KUTCHERY RD", "SAMBRIAL"), 1),
)
# fmt: on
_CITY_BY_NAME = {city.name: city for city in _CITIES}

_MALE_FIRST = (
    "Ali", "Hassan", "Hamza", "Usman", "Umar", "Bilal", "Fahad", "Faisal", "Imran", "Kashif",
    "Zeeshan", "Saad", "Shahid", "Asad", "Haris", "Waqas", "Adnan", "Junaid", "Tariq",
    "Salman", "Danish", "Arslan", "Farhan", "Naveed", "Kamran", "Rizwan", "Sohail", "Talha",
    "Zain", "Ammar", "Shoaib", "Yasir", "Irfan", "Noman", "Sajid", "Waleed", "Ahsan", "Owais",
)  # fmt: skip
_FEMALE_FIRST = (
    "Fatima", "Zainab", "Maryam", "Sana", "Hira", "Sadia", "Amna", "Mahnoor", "Iqra", "Rabia",
    "Nida", "Saba", "Kiran", "Sidra", "Anam", "Mehwish", "Areeba", "Khadija", "Noor", "Huma",
    "Farah", "Bushra", "Uzma", "Samina", "Javeria", "Aiman", "Laiba", "Rida", "Sobia", "Nimra",
    "Hafsa", "Saima", "Ayesha", "Komal",
)  # fmt: skip
_FAMILY = (
    "Khan", "Ahmed", "Malik", "Qureshi", "Siddiqui", "Chaudhry", "Butt", "Sheikh", "Raza",
    "Abbasi", "Hussain", "Iqbal", "Javed", "Mirza", "Baig", "Shah", "Awan", "Rana", "Akhtar",
    "Bhatti", "Cheema", "Hashmi", "Zaidi", "Rizvi", "Farooq", "Aslam", "Memon", "Ansari",
    "Khattak", "Afridi", "Kazmi", "Anwar", "Saleem", "Nawaz",
)  # fmt: skip
# Bank titles often carry the full name from the CNIC, which the customer shortens.
_MALE_MIDDLE = ("Ali", "Ahmed", "Hassan", "Usman", "Ul Haq", "Ur Rehman")
_FEMALE_MIDDLE = ("Noor", "Fatima", "Zahra", "Batool", "Naz", "Bibi")

# Landlords and elders: names a tenant or a child pays every month.
_OLDER_MALE_FIRST = (
    "Muhammad Aslam", "Abdul Rashid", "Ghulam Mustafa", "Muhammad Akram", "Abdul Majeed",
    "Muhammad Saleem", "Khalid Mehmood", "Tahir Mehmood", "Zafar Iqbal", "Nasir Ali",
)  # fmt: skip

# 4-letter IBAN code, short name as statements and ATMs print it, weight as a customer's bank.
_BANKS: tuple[tuple[str, str, int], ...] = (
    ("HABB", "HBL", 14),
    ("MEZN", "MEEZAN", 12),
    ("UNIL", "UBL", 10),
    ("MUCB", "MCB", 10),
    ("ALFH", "ALFALAH", 9),
    ("ABPA", "ABL", 8),
    ("BAHL", "BAHL", 6),
    ("NBPA", "NBP", 6),
    ("FAYS", "FAYSAL", 4),
    ("SCBL", "SCB", 3),
    ("BKIP", "BANKISLAMI", 3),
    ("ASCM", "ASKARI", 3),
    ("MPBL", "HABIBMETRO", 3),
    ("BPUN", "BOP", 3),
    ("JSBL", "JS BANK", 2),
    ("DUIB", "DIB", 2),
    ("SONE", "SONERI", 1),
)
# People receive Raast and IBFT transfers in wallets as often as in banks.
_WALLETS: tuple[tuple[str, str, int], ...] = (
    ("TMFB", "EASYPAISA", 8),
    ("JCMA", "JAZZCASH", 8),
    ("SADA", "SADAPAY", 3),
    ("NAYA", "NAYAPAY", 3),
)
_BANK_SHORT = {code: short for code, short, _ in (*_BANKS, *_WALLETS)}

# Operator and the mobile prefixes it owns (PTA numbering; Warid's 32x now belongs to Jazz).
_OPERATORS: tuple[tuple[str, tuple[int, ...], int], ...] = (
    ("Jazz", (300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 320, 321, 322, 323, 324), 40),
    ("Zong", (310, 311, 312, 313, 314, 315, 316, 317, 318), 25),
    ("Telenor", (340, 341, 342, 343, 344, 345, 346, 347), 22),
    ("Ufone", (330, 331, 332, 333, 334, 335, 336), 13),
)

_EMPLOYERS = (
    "Systems Ltd", "Engro Fertilizers Ltd", "Pakistan State Oil", "Nestle Pakistan Ltd",
    "Unilever Pakistan Ltd", "Lucky Cement Ltd", "Arbisoft", "10Pearls Pakistan",
    "NetSol Technologies", "Aga Khan University Hospital", "Interloop Ltd", "Packages Ltd",
    "Fauji Fertilizer Co", "OGDCL", "TPL Corp", "Jazz (PMCL)", "Telenor Pakistan",
    "Hascol Petroleum", "Pakistan Tobacco Co", "Shaukat Khanum Hospital", "Beaconhouse School",
    "LUMS", "Habib University", "Gul Ahmed Textile Mills", "K-Electric Ltd",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Merchant:
    name: str
    statement: str
    category: str
    cities: tuple[str, ...]  # city shorts; empty means every city has one


_ALL: tuple[str, ...] = ()
_POS_MERCHANTS: tuple[_Merchant, ...] = (
    _Merchant("Imtiaz Super Market", "IMTIAZ SUPER MARKET", "grocery", ("KHI", "HYD", "LHR")),
    _Merchant("Chase Up", "CHASE UP", "grocery", ("KHI", "LHR", "FSD", "MUL", "HYD")),
    _Merchant("Naheed Supermarket", "NAHEED SUPERMARKET", "grocery", ("KHI",)),
    _Merchant("Carrefour", "CARREFOUR", "grocery", ("KHI", "LHR", "ISB", "FSD")),
    _Merchant("METRO", "METRO CASH AND CARRY", "grocery", ("KHI", "LHR", "ISB", "FSD", "MUL")),
    _Merchant("Al-Fatah", "AL-FATAH", "grocery", ("LHR", "ISB")),
    _Merchant("Jalal Sons", "JALAL SONS", "grocery", ("LHR",)),
    _Merchant("Green Valley", "GREEN VALLEY HYPERMARKET", "grocery", ("ISB", "RWP")),
    _Merchant("Save Mart", "SAVE MART", "grocery", ("ISB", "RWP")),
    _Merchant("Madina General Store", "MADINA GENERAL STORE", "grocery", _ALL),
    _Merchant("Al-Rehman Super Store", "AL-REHMAN SUPER STORE", "grocery", _ALL),
    _Merchant("D. Watson", "D WATSON CHEMIST", "pharmacy", ("ISB", "RWP")),
    _Merchant("Servaid Pharmacy", "SERVAID PHARMACY", "pharmacy", ("LHR",)),
    _Merchant("Fazal Din's Pharma Plus", "FAZAL DINS PHARMA PLUS", "pharmacy", ("LHR", "ISB")),
    _Merchant("Dvago", "DVAGO PHARMACY", "pharmacy", ("KHI", "LHR", "ISB")),
    _Merchant("Al-Shifa Medical Store", "AL-SHIFA MEDICAL STORE", "pharmacy", _ALL),
    _Merchant("PSO", "PSO FILLING STATION", "fuel", _ALL),
    _Merchant("Shell", "SHELL PAKISTAN", "fuel", _ALL),
    _Merchant("Total Parco", "TOTAL PARCO", "fuel", _ALL),
    _Merchant("Attock Petroleum", "ATTOCK PETROLEUM", "fuel", _ALL),
    _Merchant("KFC", "KFC", "dining", _ALL),
    _Merchant("McDonald's", "MCDONALDS", "dining", _ALL),
    _Merchant(
        "Cheezious", "CHEEZIOUS", "dining", ("LHR", "ISB", "RWP", "FSD", "MUL", "PEW", "SKT")
    ),
    _Merchant("Kababjees", "KABABJEES", "dining", ("KHI", "LHR", "ISB")),
    _Merchant("Savour Foods", "SAVOUR FOODS", "dining", ("ISB", "RWP")),
    _Merchant("Butt Karahi", "BUTT KARAHI", "dining", ("LHR",)),
    _Merchant("Student Biryani", "STUDENT BIRYANI", "dining", ("KHI",)),
    _Merchant("Tehzeeb Bakers", "TEHZEEB BAKERS", "dining", ("ISB", "RWP")),
    _Merchant("Gloria Jean's Coffees", "GLORIA JEANS COFFEES", "dining", ("KHI", "LHR", "ISB")),
    _Merchant("Bundu Khan", "BUNDU KHAN", "dining", ("LHR", "KHI", "ISB")),
    _Merchant("Charsi Tikka", "CHARSI TIKKA", "dining", ("PEW",)),
    _Merchant("Khaadi", "KHAADI", "clothing", _ALL),
    _Merchant("Gul Ahmed Ideas", "IDEAS GUL AHMED", "clothing", _ALL),
    _Merchant("Sapphire", "SAPPHIRE", "clothing", ("KHI", "LHR", "ISB", "RWP", "FSD", "MUL")),
    _Merchant("Outfitters", "OUTFITTERS", "clothing", ("KHI", "LHR", "ISB", "RWP", "FSD")),
    _Merchant("Bata", "BATA PAKISTAN", "clothing", _ALL),
    _Merchant("J.", "J. JUNAID JAMSHED", "clothing", _ALL),
    _Merchant("Liberty Books", "LIBERTY BOOKS", "books", ("KHI", "LHR", "ISB")),
)
# How often each kind of shop turns up among card spends, and what a visit costs (rupees,
# before scaling by income).
_POS_CATEGORIES: tuple[tuple[str, int, int, int], ...] = (
    ("grocery", 36, 900, 9_000),
    ("fuel", 22, 1_500, 5_000),
    ("dining", 22, 800, 5_500),
    ("pharmacy", 10, 250, 3_500),
    ("clothing", 7, 2_500, 12_000),
    ("books", 3, 600, 4_000),
)
# Online spends that are not subscriptions: merchant, statement name, weight, rupee range.
_ECOM: tuple[tuple[str, str, int, int, int], ...] = (
    ("Foodpanda", "FOODPANDA", 45, 650, 4_200),
    ("Daraz.pk", "DARAZ.PK", 35, 500, 12_000),
    ("Bookme.pk", "BOOKME.PK", 6, 1_200, 7_500),
    ("Sastaticket.pk", "SASTATICKET.PK", 3, 9_000, 42_000),
    ("Google Play", "GOOGLE PLAY", 8, 150, 2_500),
    ("Khaadi", "KHAADI.COM", 3, 2_500, 9_000),
)
# Monthly subscriptions billed to a card, with the PKR prices they are sold at.
_SUBSCRIPTIONS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("Netflix", "NETFLIX.COM", (450, 800, 1_100)),
    ("Spotify", "SPOTIFY", (299, 479)),
    ("YouTube Premium", "GOOGLE YOUTUBE PREMIUM", (479, 899)),
)
_TOPUP_AMOUNTS = (100, 200, 300, 500, 500, 500, 1_000, 1_000, 1_500, 2_000)


# --------------------------------------------------------------------------------------
# Working state (not public)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Contact:
    name: str
    iban: str
    mobile: str


@dataclass(slots=True)
class _Account:
    record: SeedAccount
    bank_short: str
    primary: bool
    card_fee: int  # rupees before duty; the debit card's annual fee at this bank
    sms_fee: int  # rupees a month before duty
    profit_rate_bp: int  # savings profit, basis points a year
    opening_minor: int = 0
    # People stop spending on wants before the account runs dry; bills still get paid.
    cushion_minor: int = 0
    incoming: list[_Planned] = field(default_factory=list)


@dataclass(slots=True)
class _Profile:
    customer: SeedCustomer
    city: _City
    operator: str
    salaried: bool
    employer: str | None
    income: int  # rupees a month, net, since the latest July increment
    previous_income: int
    salary_day: int
    # Payroll runs at the same time every month; with a fixed day and time, a window of
    # N months holds exactly N paydays.
    pay_time: time
    renting: bool
    rent: int
    landlord: _Contact | None
    has_ptcl: bool
    refs: dict[str, str]
    subscriptions: tuple[tuple[str, str, int, int], ...]  # name, statement, rupees, day
    contacts: tuple[_Contact, ...]
    accounts: list[_Account]


@dataclass(slots=True)
class _Planned:
    at: datetime
    code: str
    credit: bool
    amount_minor: int  # for profit: 0, worked out from the balance when it is booked
    description: str
    merchant_name: str | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    # A debit the balance cannot cover shrinks to a multiple of shrink_unit, if that
    # leaves at least shrink_min; otherwise it is not booked (card declined, bill paid late).
    shrink_unit: int = 0
    shrink_min: int = 0
    transfer_to: int | None = None  # index of the customer's own account that receives it
    discretionary: bool = False  # a want, not a bill: waits until there is money to spare
    profit_label: str | None = None


@dataclass(frozen=True, slots=True)
class _Booked:
    at: datetime
    code: str
    credit: bool
    amount_minor: int
    description: str
    merchant_name: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    balance_after_minor: int


class _Registry:
    """Identifiers already handed out, so no two people share one."""

    def __init__(self) -> None:
        self.usernames: set[str] = set()
        self.cnics: set[str] = set()
        self.mobiles: set[str] = set()
        self.ibans: set[str] = set()


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def generate(*, now: datetime, customers: int = 8, months: int = 6, seed: int = 2026) -> SeedBank:
    """Customers, their accounts and ``months`` months of history up to ``now``.

    ``now`` must be timezone-aware; transactions are booked in Pakistan time (+05:00) and
    never after it. The first two customers are always Ayesha Khan and Bilal Ahmed.
    Customer ``i`` depends only on ``seed`` and the customers before it, so asking for more
    customers keeps the first ones.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if months < 1:
        raise ValueError("months must be at least 1")
    now = now.astimezone(PKT)
    start = _minus_months(now, months)
    master = random.Random(seed)
    registry = _Registry()
    # Reserved up front so no made-up payee is ever given Ayesha's or Bilal's identifiers.
    for anchor in _ANCHORS:
        registry.usernames.add(f"{anchor.first}.{anchor.family}".lower())
        registry.cnics.add(anchor.cnic)
        registry.mobiles.add(anchor.mobile)
        registry.ibans.update(
            str(make_iban(code, number)) for code, number, _, _ in anchor.accounts
        )
    width = max(4, len(str(customers)))
    # Dealt from shuffled decks, not drawn independently: eight customers then come from
    # several cities, Karachi and Lahore most often, never three from Quetta by chance.
    # Ayesha and Bilal hold the first deck's Lahore and Karachi cards.
    cities = [_CITY_BY_NAME[anchor.city] for anchor in _ANCHORS]
    while len(cities) < customers:
        deck = [city for city in _CITIES for _ in range(city.weight)]
        if len(cities) == len(_ANCHORS):
            for held in cities:
                deck.remove(held)
        random.Random(f"cities:{seed}:{len(cities)}").shuffle(deck)
        cities.extend(deck)

    profiles: list[_Profile] = []
    for index in range(customers):
        # Two streams per customer: who they are stays fixed when only now/months change.
        who = random.Random(master.getrandbits(64))
        activity = random.Random(master.getrandbits(64))
        city = cities[index]
        profile = _make_profile(index, f"bcu_{index + 1:0{width}d}", who, registry, start, city)
        _plan_history(profile, activity, start, now)
        profiles.append(profile)

    all_accounts = [account for profile in profiles for account in profile.accounts]
    account_width = max(4, len(str(len(all_accounts))))
    booked_by_account: list[list[_Booked]] = []
    for profile in profiles:
        # Own transfers flow out of the first account, so it is booked first.
        for account in profile.accounts:
            booked_by_account.append(_book(account, profile.accounts, now))

    accounts = [
        replace(account.record, id=f"bac_{number:0{account_width}d}")
        for number, account in enumerate(all_accounts, start=1)
    ]

    total = sum(len(booked) for booked in booked_by_account)
    tx_width = max(6, len(str(total)))
    transactions: list[SeedTransaction] = []
    for seed_account, booked in zip(accounts, booked_by_account, strict=True):
        for entry in booked:
            transactions.append(
                SeedTransaction(
                    id=f"btx_{len(transactions) + 1:0{tx_width}d}",
                    account_id=seed_account.id,
                    booked_at=entry.at,
                    amount_minor=entry.amount_minor,
                    credit=entry.credit,
                    code=entry.code,
                    description=entry.description,
                    merchant_name=entry.merchant_name,
                    counterparty_name=entry.counterparty_name,
                    counterparty_iban=entry.counterparty_iban,
                    balance_after_minor=entry.balance_after_minor,
                )
            )
    return SeedBank(
        customers=tuple(profile.customer for profile in profiles),
        accounts=tuple(accounts),
        transactions=tuple(transactions),
    )


def opening_balance_minor(bank: SeedBank, account_id: str) -> int:
    """The account's balance before its first transaction (every account has one)."""
    for tx in bank.transactions:
        if tx.account_id == account_id:
            signed = tx.amount_minor if tx.credit else -tx.amount_minor
            return tx.balance_after_minor - signed
    raise KeyError(account_id)


# --------------------------------------------------------------------------------------
# Who the customers are
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Anchor:
    """A customer the docs and browser tests name; fixed whatever the seed."""

    first: str
    family: str
    male: bool
    city: str
    cnic: str
    mobile: str
    title: str
    employer: str
    income: int
    previous_income: int
    salary_day: int
    # (bank code, 16-digit account, subtype, nickname); the first account is Raast-linked.
    accounts: tuple[tuple[str, str, str, str], ...]


# The IBANs and mobiles are the ones the README and the payments sandbox seed already use,
# so a payment to "Ayesha Khan" in the docs lands on an account that exists here.
_ANCHORS: tuple[_Anchor, ...] = (
    _Anchor(
        first="Ayesha",
        family="Khan",
        male=False,
        city="Lahore",
        cnic="3520212345674",
        mobile="+923001234567",
        title="AYESHA KHAN",
        employer="Systems Ltd",
        income=184_350,
        previous_income=167_420,
        salary_day=27,
        accounts=(
            ("SCBL", "0000001123456702", CURRENT, "Salary account"),
            ("MEZN", "0114010387652291", SAVINGS, "Rainy day fund"),
        ),
    ),
    _Anchor(
        first="Bilal",
        family="Ahmed",
        male=True,
        city="Karachi",
        cnic="4210176543219",
        mobile="+923331234567",
        # The CNIC name: a payee check for "Bilal Ahmed" is a close match, not an exact one.
        title="MUHAMMAD BILAL AHMED",
        employer="Engro Fertilizers Ltd",
        income=142_780,
        previous_income=131_060,
        salary_day=1,
        accounts=(
            ("MEZN", "0002140100345678", CURRENT, "Salary account"),
            ("HABB", "0042791002561403", SAVINGS, "Hajj savings"),
        ),
    ),
)


def _make_profile(
    index: int,
    customer_id: str,
    rng: random.Random,
    registry: _Registry,
    start: datetime,
    city: _City,
) -> _Profile:
    anchor = _ANCHORS[index] if index < len(_ANCHORS) else None
    if anchor is not None:
        first, family, male = anchor.first, anchor.family, anchor.male
        city = _CITY_BY_NAME[anchor.city]
        username = f"{first}.{family}".lower()
        cnic = anchor.cnic
        mobile = anchor.mobile
        title = anchor.title
    else:
        male = rng.random() < 0.55
        first, family, username = _pick_name(rng, male, registry)
        cnic = _make_cnic(rng, city, male, registry)
        mobile = _make_mobile(rng, registry)
        title = _make_title(rng, first, family, male)
    registry.usernames.add(username)
    registry.cnics.add(cnic)
    registry.mobiles.add(mobile)
    full_name = f"{first} {family}"
    # Hold the generator to the same rules a partner's input is held to.
    parse_cnic(cnic)
    parse_raast_id(mobile)
    customer = SeedCustomer(
        id=customer_id,
        username=username,
        full_name=full_name,
        cnic=cnic,
        mobile=mobile,
        city=city.name,
    )
    operator = _operator_of(mobile)

    employer: str | None
    if anchor is not None:
        salaried, employer = True, anchor.employer
        income, salary_day = anchor.income, anchor.salary_day
        previous_income = anchor.previous_income
    else:
        salaried = rng.random() < 0.8
        employer = rng.choice(_EMPLOYERS) if salaried else None
        # Most salaries are modest; a few senior people earn near the top of the range.
        income = round(rng.triangular(60_000, 450_000, 95_000))
        if not salaried:
            income = _round_to(rng.triangular(70_000, 350_000, 120_000), 1_000)
        # Private employers pay in the last week; government and some others on the 1st.
        salary_day = rng.choice((25, 26, 27, 28, 28, 1))
        previous_income = max(60_000, round(income / rng.uniform(1.07, 1.15)))

    renting = rng.random() < 0.5
    landlord = (
        _make_contact(rng, rng.choice(_OLDER_MALE_FIRST), rng.choice(_FAMILY), registry, _BANKS)
        if renting
        else None
    )
    rent = _round_to(income * rng.uniform(0.18, 0.3), 1_000)
    refs = {
        "electricity": _electricity_ref(rng, city),
        "gas": "".join(rng.choices("0123456789", k=11 if city.gas == "SNGPL" else 10)),
        "ptcl": city.area_code
        + "".join(rng.choices("0123456789", k=7 if len(city.area_code) == 3 else 6)),
    }
    subscriptions = tuple(
        (name, statement, rng.choice(prices), rng.randint(1, 28))
        for name, statement, prices in _SUBSCRIPTIONS
        if rng.random() < 0.35
    )
    contacts: list[_Contact] = []
    names = {full_name}
    wanted = rng.randint(4, 7)
    while len(contacts) < wanted:
        # Half the people someone sends money to are family and share the family name.
        contact_family = family if rng.random() < 0.5 else rng.choice(_FAMILY)
        contact_male = rng.random() < 0.55
        contact_first = rng.choice(_MALE_FIRST if contact_male else _FEMALE_FIRST)
        if f"{contact_first} {contact_family}" in names:
            continue  # two "Sana Khan"s in one statement read as one person
        names.add(f"{contact_first} {contact_family}")
        contacts.append(
            _make_contact(rng, contact_first, contact_family, registry, (*_BANKS, *_WALLETS))
        )

    profile = _Profile(
        customer=customer,
        city=city,
        operator=operator,
        salaried=salaried,
        employer=employer,
        income=income,
        previous_income=previous_income,
        salary_day=salary_day,
        pay_time=time(rng.randint(1, 6), rng.randint(0, 59), rng.randint(0, 59)),
        renting=renting,
        rent=rent,
        landlord=landlord,
        has_ptcl=anchor is not None or rng.random() < 0.6,
        refs=refs,
        subscriptions=subscriptions,
        contacts=tuple(contacts),
        accounts=[],
    )
    profile.accounts.extend(_make_accounts(rng, profile, anchor, title, registry, start))
    return profile


def _make_accounts(
    rng: random.Random,
    profile: _Profile,
    anchor: _Anchor | None,
    title: str,
    registry: _Registry,
    start: datetime,
) -> list[_Account]:
    specs: list[tuple[str, str, str, str]] = []
    if anchor is not None:
        specs.extend(anchor.accounts)
    else:
        count = _weighted(rng, [(1, 4), (2, 4), (3, 2)])
        codes: list[str] = []
        while len(codes) < count:
            code = _weighted(rng, [(c, w) for c, _, w in _BANKS])
            if code not in codes:
                codes.append(code)
        for position, code in enumerate(codes):
            if position == 0:
                subtype = CURRENT
                nickname = (
                    "Salary account"
                    if profile.salaried
                    else rng.choice(("Main account", "Everyday account", "Freelance income"))
                )
            elif profile.salaried or rng.random() < 0.6:
                # The salary account is a salaried customer's only current account, so
                # "one salary a month per current account" holds.
                subtype = SAVINGS
                nickname = rng.choice(
                    ("Savings", "Rainy day fund", "Hajj savings", "Kids' education",
                     "Emergency fund", "Wedding savings")
                )  # fmt: skip
            else:
                subtype = CURRENT
                nickname = rng.choice(("Household spending", "Shopping account"))
            specs.append((code, _account_number(rng, registry, code), subtype, nickname))

    # Most people link Raast to the account they use every day; a few never linked one.
    raast_position: int | None = 0
    if anchor is None:
        roll = rng.random()
        if roll < 0.12:
            raast_position = None
        elif roll < 0.2 and len(specs) > 1:
            raast_position = 1

    accounts: list[_Account] = []
    for position, (code, account16, subtype, nickname) in enumerate(specs):
        iban = str(make_iban(code, account16))
        registry.ibans.add(iban)
        # Accounts predate the history; card fees fall due in the month they were opened.
        opened_on = start.date() - timedelta(days=rng.randint(60, 3_650))
        record = SeedAccount(
            id="",  # numbered once every customer's accounts exist
            customer_id=profile.customer.id,
            bank_code=code,
            iban=iban,
            title=title,
            currency="PKR",
            account_type="Personal",
            subtype=subtype,
            nickname=nickname,
            opened_on=opened_on,
            raast_id=profile.customer.mobile if position == raast_position else None,
        )
        accounts.append(
            _Account(
                record=record,
                bank_short=_BANK_SHORT[code],
                primary=position == 0,
                card_fee=rng.choice((1_500, 2_000, 2_500, 3_000)),
                sms_fee=rng.choice((50, 60, 75, 100)),
                profit_rate_bp=rng.choice((950, 1_000, 1_050, 1_100, 1_150)),
            )
        )
    return accounts


def _pick_name(rng: random.Random, male: bool, registry: _Registry) -> tuple[str, str, str]:
    firsts = _MALE_FIRST if male else _FEMALE_FIRST
    for _ in range(50):
        first, family = rng.choice(firsts), rng.choice(_FAMILY)
        username = f"{first}.{family}".lower()
        if username not in registry.usernames:
            return first, family, username
    # Only a very large sandbox runs out of pairs; people then get a number, as on any site.
    first, family = rng.choice(firsts), rng.choice(_FAMILY)
    suffix = 2
    while f"{first}.{family}{suffix}".lower() in registry.usernames:
        suffix += 1
    return first, family, f"{first}.{family}{suffix}".lower()


def _make_title(rng: random.Random, first: str, family: str, male: bool) -> str:
    roll = rng.random()
    if male and roll < 0.3:
        parts = ["Muhammad", first, family]
    elif roll < 0.45:
        parts = [first, rng.choice(_MALE_MIDDLE if male else _FEMALE_MIDDLE), family]
    else:
        parts = [first, family]
    return " ".join(parts).upper()


def _make_cnic(rng: random.Random, city: _City, male: bool, registry: _Registry) -> str:
    while True:
        # NADRA's last digit is odd for men and even for women.
        gender = rng.choice("13579" if male else "2468")
        cnic = rng.choice(city.cnic_districts) + f"{rng.randrange(10**7):07d}" + gender
        if cnic not in registry.cnics:
            return cnic


def _make_mobile(rng: random.Random, registry: _Registry) -> str:
    while True:
        _, prefixes, _ = _weighted(rng, [(op, op[2]) for op in _OPERATORS])
        mobile = f"+92{rng.choice(prefixes)}{rng.randrange(10**7):07d}"
        if mobile not in registry.mobiles:
            registry.mobiles.add(mobile)
            return mobile


def _operator_of(mobile: str) -> str:
    prefix = int(mobile[3:6])
    for name, prefixes, _ in _OPERATORS:
        if prefix in prefixes:
            return name
    return "Jazz"  # 32x numbers outside the list above were Warid's, now Jazz's


def _account_number(rng: random.Random, registry: _Registry, code: str) -> str:
    while True:
        # Branch code first, as most banks' account numbers begin.
        account16 = f"{rng.randint(1, 1999):04d}{rng.randrange(10**12):012d}"
        if str(make_iban(code, account16)) not in registry.ibans:
            return account16


def _make_contact(
    rng: random.Random,
    first: str,
    family: str,
    registry: _Registry,
    institutions: Sequence[tuple[str, str, int]],
) -> _Contact:
    code = _weighted(rng, [(c, w) for c, _, w in institutions])
    iban = str(make_iban(code, _account_number(rng, registry, code)))
    registry.ibans.add(iban)
    return _Contact(name=f"{first} {family}", iban=iban, mobile=_make_mobile(rng, registry))


def _electricity_ref(rng: random.Random, city: _City) -> str:
    if city.electricity == "K-Electric":
        return "0400" + "".join(rng.choices("0123456789", k=9))  # 13-digit account number
    return "".join(rng.choices("0123456789", k=14))  # WAPDA DISCOs' 14-digit reference


# --------------------------------------------------------------------------------------
# What happens in their accounts
# --------------------------------------------------------------------------------------


def _plan_history(profile: _Profile, rng: random.Random, start: datetime, now: datetime) -> None:
    """Plan every account's events; amounts of own transfers are settled when booked."""
    # Spending follows income: a PKR 400k earner's grocery run is not a PKR 70k earner's.
    scale = min(2.5, max(0.4, profile.income / 150_000))
    savings = [i for i, a in enumerate(profile.accounts) if a.record.subtype == SAVINGS]
    spending = [
        i for i, a in enumerate(profile.accounts) if a.record.subtype == CURRENT and not a.primary
    ]
    for account in profile.accounts:
        # What was there before the history starts: about a month's pay in the main
        # account, pocket money in a second current account, years of savings in savings.
        if account.record.subtype == SAVINGS:
            opening = rng.triangular(80_000, 3_000_000, 400_000) * min(scale, 1.5)
            # Savings are dipped into, never emptied, so profit is paid every month.
            account.cushion_minor = round(opening * 0.1) * _PAISA
        elif account.primary:
            opening = profile.income * rng.uniform(0.6, 1.6)
            account.cushion_minor = round(profile.income * rng.uniform(0.03, 0.08)) * _PAISA
        else:
            opening = profile.income * rng.uniform(0.05, 0.25)
            account.cushion_minor = round(profile.income * 0.01) * _PAISA
        account.opening_minor = round(opening) * _PAISA
        plan: list[_Planned] = []
        if account.primary:
            _plan_primary(plan, profile, rng, start, now, scale, savings, spending)
        if account.record.subtype == CURRENT:
            _plan_card_life(plan, profile, account, rng, start, now, scale)
            _plan_charges(plan, account, rng, start, now)
        else:
            _plan_savings(plan, profile, rng, start, now, scale)
        account.incoming.extend(p for p in plan if start < p.at <= now)


def _plan_primary(
    plan: list[_Planned],
    profile: _Profile,
    rng: random.Random,
    start: datetime,
    now: datetime,
    scale: float,
    savings: Sequence[int],
    spending: Sequence[int],
) -> None:
    city = profile.city
    income = profile.income
    for year, month in _months_between(start, now):
        payday = date(year, month, profile.salary_day)
        if profile.salaried:
            # Paid on the 1st means paid for the month before.
            label_y, label_m = (year, month) if payday.day != 1 else _previous_month(year, month)
            pay = _salary_for(profile, label_y, label_m, now)
            employer = profile.employer or ""
            plan.append(
                _Planned(
                    at=datetime.combine(payday, profile.pay_time, PKT),
                    code="SALARY",
                    credit=True,
                    amount_minor=pay * _PAISA,
                    description=f"SALARY {_label(label_y, label_m)} {employer.upper()}",
                    counterparty_name=employer,
                )
            )
        else:
            # Freelancers and shopkeepers are paid by Raast: a main client on a fixed day,
            # the rest in lumps whenever.
            lumps = rng.randint(2, 4)
            for lump in range(lumps):
                payer = profile.contacts[lump % 3]
                amount = _round_to(income / lumps * rng.uniform(0.7, 1.3), 500)
                if lump == 0:
                    at = datetime.combine(payday, profile.pay_time, PKT) + timedelta(hours=9)
                else:
                    day = rng.randint(1, calendar.monthrange(year, month)[1])
                    at = _at(rng, date(year, month, day), 9, 21)
                plan.append(_raast_in(at, payer, amount))
        last_day = calendar.monthrange(year, month)[1]

        if profile.renting and profile.landlord is not None:
            landlord = profile.landlord
            day = rng.randint(1, 5)
            plan.append(
                _Planned(
                    at=_at(rng, date(year, month, day), 10, 20),
                    code="IBFT_OUT",
                    credit=False,
                    amount_minor=profile.rent * _PAISA,
                    description=f"IBFT TO {landlord.name.upper()} {_short_of(landlord.iban)}"
                    f" ..{landlord.iban[-4:]}",
                    counterparty_name=landlord.name,
                    counterparty_iban=landlord.iban,
                )
            )

        # Utilities: bills arrive in the first week and are paid before the due date.
        bill_day = min(last_day, rng.randint(8, 18))
        electricity = _seasonal_electricity(rng, month, city, scale)
        plan.append(
            _bill(
                rng,
                date(year, month, bill_day),
                city.electricity,
                profile.refs["electricity"],
                electricity,
            )
        )
        gas_day = min(last_day, rng.randint(10, 20))
        plan.append(
            _bill(
                rng,
                date(year, month, gas_day),
                city.gas,
                profile.refs["gas"],
                _seasonal_gas(rng, month, scale),
            )
        )
        if profile.has_ptcl:
            ptcl = rng.choice((2_499, 3_199, 3_999, 4_999)) + rng.randint(0, 400)
            plan.append(
                _bill(
                    rng,
                    date(year, month, min(last_day, rng.randint(12, 24))),
                    "PTCL",
                    profile.refs["ptcl"],
                    ptcl,
                )
            )

        for name, statement, price, day in profile.subscriptions:
            plan.append(
                _Planned(
                    at=_at(rng, date(year, month, min(day, last_day)), 3, 7),
                    code="CARD_ECOM",
                    credit=False,
                    amount_minor=price * _PAISA,
                    description=f"ECOM {statement}",
                    merchant_name=name,
                )
            )

        # Savings go in the day after pay arrives, before the month eats them.
        sweep_day = payday + timedelta(days=1)
        for target in savings[:1]:
            amount = _round_to(income * rng.uniform(0.05, 0.15), 1_000)
            plan.append(_own_transfer(rng, sweep_day, profile, target, amount))
        for target in spending:
            for _ in range(rng.randint(1, 2)):
                amount = _round_to(income * rng.uniform(0.06, 0.14), 1_000)
                day = rng.randint(1, last_day)
                plan.append(_own_transfer(rng, date(year, month, day), profile, target, amount))

    for on in _days_between(start, now):
        # Money to and from the people in their life.
        if rng.random() < 0.08:
            contact = rng.choice(profile.contacts)
            amount = _family_amount(rng, scale)
            plan.append(
                _Planned(
                    at=_at(rng, on, 8, 23),
                    code="RAAST_OUT",
                    discretionary=True,
                    credit=False,
                    amount_minor=amount * _PAISA,
                    description=f"RAAST P2P TO {contact.name.upper()}",
                    counterparty_name=contact.name,
                    counterparty_iban=contact.iban,
                    shrink_unit=500 * _PAISA,
                    shrink_min=500 * _PAISA,
                )
            )
        if rng.random() < 0.05:
            contact = rng.choice(profile.contacts)
            amount = _family_amount(rng, scale * 0.6)
            plan.append(_raast_in(_at(rng, on, 8, 23), contact, amount))
        if rng.random() < 0.07:
            # Mostly their own phone; sometimes a parent's or a child's.
            if rng.random() < 0.75:
                number, operator = profile.customer.mobile, profile.operator
            else:
                contact = rng.choice(profile.contacts)
                number, operator = contact.mobile, _operator_of(contact.mobile)
            plan.append(
                _Planned(
                    at=_at(rng, on, 8, 23),
                    code="MOBILE_TOPUP",
                    credit=False,
                    amount_minor=rng.choice(_TOPUP_AMOUNTS) * _PAISA,
                    description=f"MOBILE TOPUP {operator.upper()} 0{number[3:]}",
                    merchant_name=operator,
                )
            )


def _plan_card_life(
    plan: list[_Planned],
    profile: _Profile,
    account: _Account,
    rng: random.Random,
    start: datetime,
    now: datetime,
    scale: float,
) -> None:
    """Card spends and cash: several a week on the main account, fewer on a second one."""
    city = profile.city
    share = 1.0 if account.primary else 0.3
    merchants = [m for m in _POS_MERCHANTS if not m.cities or city.short in m.cities]
    categories = [c for c in _POS_CATEGORIES if any(m.category == c[0] for m in merchants)]
    for day in _days_between(start, now):
        weekend = day.weekday() >= 5
        if rng.random() < (0.36 if weekend else 0.22) * share:
            category, _, low, high = _weighted(rng, [(c, c[1]) for c in categories])
            merchant = rng.choice([m for m in merchants if m.category == category])
            factor = scale if category != "fuel" else min(scale, 1.4)
            amount = round(rng.uniform(low, high) * factor)
            if category == "fuel" and rng.random() < 0.6:
                amount = _round_to(amount, 500)  # "fill 3,000 ka" is how petrol is bought
            plan.append(
                _Planned(
                    at=_at(rng, day, 10, 23),
                    code="CARD_POS",
                    discretionary=True,
                    credit=False,
                    amount_minor=max(amount, 100) * _PAISA,
                    description=f"POS {merchant.statement} {city.short}",
                    merchant_name=merchant.name,
                )
            )
        if rng.random() < 0.09 * share:
            name, statement, _, low, high = _weighted(rng, [(e, e[2]) for e in _ECOM])
            factor = scale if high < 20_000 else 1.0
            plan.append(
                _Planned(
                    at=_at(rng, day, 11, 23),
                    code="CARD_ECOM",
                    discretionary=True,
                    credit=False,
                    amount_minor=max(round(rng.uniform(low, high) * factor), 150) * _PAISA,
                    description=f"ECOM {statement}",
                    merchant_name=name,
                )
            )
        if rng.random() < 0.09 * share:
            # Usually the bank's own ATM; otherwise whichever 1LINK ATM is nearest.
            atm_bank = (
                account.bank_short
                if rng.random() < 0.65
                else _weighted(rng, [(s, w) for _, s, w in _BANKS])
            )
            unit = rng.choice((500, 1_000))
            amount = min(25_000, max(5_000, _round_to(rng.uniform(4_000, 16_000) * scale, unit)))
            plan.append(
                _Planned(
                    at=_at(rng, day, 8, 23),
                    code="ATM_CASH",
                    discretionary=True,
                    credit=False,
                    amount_minor=amount * _PAISA,
                    description=f"ATM WDL {atm_bank} {rng.choice(city.areas)} {city.short}",
                    merchant_name=None,
                    shrink_unit=500 * _PAISA,
                    shrink_min=5_000 * _PAISA,
                )
            )


def _plan_charges(
    plan: list[_Planned], account: _Account, rng: random.Random, start: datetime, now: datetime
) -> None:
    opened_on = account.record.opened_on
    for year, month in _months_between(start, now):
        last_day = calendar.monthrange(year, month)[1]
        # Monthly, on the account's cycle day; a fixed day and time puts one in every month
        # of any window, so every current account has some history.
        cycle = datetime.combine(date(year, month, min(opened_on.day, 28)), time(1, 30), PKT)
        plan.append(_charge(cycle, "SMS ALERT CHARGES", account.sms_fee))
        if month == opened_on.month:
            day = date(year, month, min(opened_on.day, last_day))
            plan.append(_charge(_at(rng, day, 0, 5), "DEBIT CARD ANNUAL FEE", account.card_fee))


def _plan_savings(
    plan: list[_Planned],
    profile: _Profile,
    rng: random.Random,
    start: datetime,
    now: datetime,
    scale: float,
) -> None:
    for year, month in _months_between(start, now):
        # The month's profit is credited in the first minutes of the next; a fixed day and
        # time puts one in every month of any window.
        label = _label(*_previous_month(year, month))
        plan.append(
            _Planned(
                at=datetime.combine(date(year, month, 1), time(0, 10), PKT),
                code="PROFIT",
                credit=True,
                amount_minor=0,
                description=f"PROFIT CREDIT {label}",
                profit_label=label,
            )
        )
    for day in _days_between(start, now):
        # Savings are broken into now and then: school fees, a wedding, a family emergency.
        if rng.random() < 0.012:
            contact = rng.choice(profile.contacts)
            amount = _round_to(rng.uniform(15_000, 80_000) * scale, 5_000)
            plan.append(
                _Planned(
                    at=_at(rng, day, 10, 19),
                    code="IBFT_OUT",
                    credit=False,
                    amount_minor=amount * _PAISA,
                    description=f"IBFT TO {contact.name.upper()} {_short_of(contact.iban)}"
                    f" ..{contact.iban[-4:]}",
                    counterparty_name=contact.name,
                    counterparty_iban=contact.iban,
                    shrink_unit=5_000 * _PAISA,
                    shrink_min=5_000 * _PAISA,
                    discretionary=True,
                )
            )


def _book(account: _Account, siblings: Sequence[_Account], now: datetime) -> list[_Booked]:
    """Book the plan in time order; debits never take the balance below zero."""
    balance = account.opening_minor
    # Profit is paid on the month's lowest balance, as most PLS savings accounts do.
    lowest = balance
    booked: list[_Booked] = []
    events = sorted(enumerate(account.incoming), key=lambda pair: (pair[1].at, pair[0]))
    for _, event in events:
        amount = event.amount_minor
        if event.profit_label is not None:
            amount = lowest * account.profit_rate_bp // (10_000 * 12)
            if amount <= 0:
                continue
            balance += amount
            booked.append(_booked(event, amount, balance))
            # Withholding tax on profit (Income Tax Ordinance s.151), filer's 20%.
            tax = (amount * 20 + 50) // 100
            if tax > 0:
                balance -= tax
                booked.append(
                    _Booked(
                        at=event.at,
                        code="CHARGES",
                        credit=False,
                        amount_minor=tax,
                        description=f"WHT U/S 151 ON PROFIT {event.profit_label}",
                        merchant_name=None,
                        counterparty_name=None,
                        counterparty_iban=None,
                        balance_after_minor=balance,
                    )
                )
            lowest = balance
            continue
        if event.credit:
            balance += amount
        else:
            spendable = balance - (account.cushion_minor if event.discretionary else 0)
            if amount > spendable:
                if event.shrink_unit == 0:
                    continue
                amount = max(spendable, 0) // event.shrink_unit * event.shrink_unit
                if amount < max(event.shrink_min, 1):
                    continue
            balance -= amount
        lowest = min(lowest, balance)
        booked.append(_booked(event, amount, balance))
        if event.transfer_to is not None:
            siblings[event.transfer_to].incoming.append(
                _Planned(
                    at=min(event.at + timedelta(seconds=3), now),
                    code="RAAST_IN",
                    credit=True,
                    amount_minor=amount,
                    description=f"RAAST P2P FROM {event.counterparty_name or ''}".upper().strip(),
                    counterparty_name=event.counterparty_name,
                    counterparty_iban=account.record.iban,
                )
            )
    return booked


def _booked(event: _Planned, amount: int, balance: int) -> _Booked:
    return _Booked(
        at=event.at,
        code=event.code,
        credit=event.credit,
        amount_minor=amount,
        description=event.description,
        merchant_name=event.merchant_name,
        counterparty_name=event.counterparty_name,
        counterparty_iban=event.counterparty_iban,
        balance_after_minor=balance,
    )


# --------------------------------------------------------------------------------------
# Event builders and amounts
# --------------------------------------------------------------------------------------


def _raast_in(at: datetime, contact: _Contact, amount: int) -> _Planned:
    return _Planned(
        at=at,
        code="RAAST_IN",
        credit=True,
        amount_minor=amount * _PAISA,
        description=f"RAAST P2P FROM {contact.name.upper()}",
        counterparty_name=contact.name,
        counterparty_iban=contact.iban,
    )


def _own_transfer(
    rng: random.Random, day: date, profile: _Profile, target: int, amount: int
) -> _Planned:
    destination = profile.accounts[target].record
    name = profile.customer.full_name
    return _Planned(
        at=_at(rng, day, 9, 22),
        code="RAAST_OUT",
        discretionary=True,
        credit=False,
        amount_minor=amount * _PAISA,
        description=f"RAAST P2P TO {name.upper()}",
        counterparty_name=name,
        counterparty_iban=destination.iban,
        shrink_unit=1_000 * _PAISA,
        shrink_min=1_000 * _PAISA,
        transfer_to=target,
    )


def _bill(rng: random.Random, day: date, biller: str, reference: str, rupees: int) -> _Planned:
    return _Planned(
        at=_at(rng, day, 9, 23),
        code="BILL_1BILL",
        credit=False,
        amount_minor=rupees * _PAISA,
        description=f"1BILL {biller.upper()} {reference}",
        merchant_name=biller,
    )


def _charge(at: datetime, what: str, rupees: int) -> _Planned:
    # The 16% duty on banking services is debited with the fee, as one statement line.
    return _Planned(
        at=at,
        code="CHARGES",
        credit=False,
        amount_minor=rupees * _PAISA * 116 // 100,
        description=f"{what} INCL FED",
    )


def _salary_for(profile: _Profile, year: int, month: int, now: datetime) -> int:
    # Increments come with July's salary, the start of Pakistan's fiscal year: months
    # before the latest July were paid at last year's rate.
    latest_july = (now.year if now.month >= 7 else now.year - 1, 7)
    return profile.income if (year, month) >= latest_july else profile.previous_income


def _seasonal_electricity(rng: random.Random, month: int, city: _City, scale: float) -> int:
    # Air-conditioning months dominate the bill, most of all in Sindh's longer summer.
    if month in (5, 6, 7, 8, 9):
        low, high = 9_000, 32_000
    elif month in (4, 10):
        low, high = 5_000, 16_000
    else:
        low, high = 2_500, 8_000
    if city.electricity in ("K-Electric", "HESCO") and month in (4, 10):
        low, high = low * 3 // 2, high * 3 // 2
    return round(rng.uniform(low, high) * min(scale, 1.8))


def _seasonal_gas(rng: random.Random, month: int, scale: float) -> int:
    # Gas heaters and geysers: winter bills are several times summer ones.
    if month in (12, 1, 2):
        low, high = 3_000, 14_000
    elif month in (11, 3):
        low, high = 1_200, 4_500
    else:
        low, high = 400, 1_800
    return round(rng.uniform(low, high) * min(scale, 1.5))


def _family_amount(rng: random.Random, scale: float) -> int:
    if rng.random() < 0.45:
        # Splitting a bill or paying back a friend: odd amounts.
        return max(200, round(rng.uniform(400, 4_500) * min(scale, 1.5) / 10) * 10)
    return max(
        1_000,
        _round_to(rng.choice((2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000)) * scale, 500),
    )


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _weighted(rng: random.Random, options: Sequence[tuple[_T, int]]) -> _T:
    total = sum(weight for _, weight in options)
    pick = rng.randrange(total)
    for option, weight in options:
        pick -= weight
        if pick < 0:
            return option
    raise AssertionError("unreachable")


def _round_to(value: float, unit: int) -> int:
    return max(unit, round(value / unit) * unit)


def _at(rng: random.Random, day: date, first_hour: int, last_hour: int) -> datetime:
    seconds = rng.randrange(first_hour * 3600, (last_hour + 1) * 3600)
    moment = time(seconds // 3600, seconds // 60 % 60, seconds % 60)
    return datetime.combine(day, moment, PKT)


def _short_of(iban: str) -> str:
    return _BANK_SHORT.get(iban[4:8], iban[4:8])


# Not calendar.month_abbr: that follows the process locale, and the output must not.
_MONTH_ABBR = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _label(year: int, month: int) -> str:
    return f"{_MONTH_ABBR[month - 1]}-{year}"


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _minus_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _months_between(start: datetime, end: datetime) -> list[tuple[int, int]]:
    months: list[tuple[int, int]] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _days_between(start: datetime, end: datetime) -> list[date]:
    first, last = start.date(), end.date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
