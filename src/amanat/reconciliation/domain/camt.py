"""ISO 20022 cash-management messages (camt.052, camt.053, camt.054), read safely.

Banks report what they booked on amanat's accounts as camt messages: camt.053 is the
statement, camt.052 the intraday report, camt.054 the debit/credit notification. Their
versions (001.02 to 001.08 and later) differ in namespace and in where a few elements sit
(``Sts`` gained a ``Cd`` child, parties a ``Pty`` wrapper, transaction details their own
``Amt``), not in meaning, so elements are matched by local name and every version reads
into one model.

Hand-written on the standard library's expat, not on an XML library: no new dependency for
a few hundred lines, and the protection the usual choice (defusedxml) would add here is
refusing what a DTD can do, which this module does by refusing any DOCTYPE outright. So
there are no entities, internal or external, no entity expansion (billion laughs) and no
network or file access. Size is bounded before parsing and nesting depth during it.

A malformed file is refused whole (:class:`StatementRejected`) with every fault located
by line and element path. :func:`parse_camt` gives a faithful typed model;
:func:`camt_records` flattens it to the :class:`ExternalRecord` s reconciliation matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from xml.parsers import expat

from amanat.kernel.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR
from amanat.reconciliation.domain.collector import collector_paused
from amanat.reconciliation.domain.errors import ErrorCollector, FileError, StatementRejected
from amanat.reconciliation.domain.external_ids import Occurrences, digest_id
from amanat.reconciliation.domain.records import BatchMember, Direction, ExternalRecord

DEFAULT_MAX_BYTES = 50 * 2**20
# Real camt nests about 12 deep; the bound keeps the reader's recursion far from Python's.
MAX_DEPTH = 64

CREDIT = "CRDT"
DEBIT = "DBIT"
BOOKED = "BOOK"
# ISO 20022's placeholder for "the instructing party gave no end-to-end id".
NOT_PROVIDED = "NOTPROVIDED"

# The message element names the kind; each kind calls its records differently.
MESSAGE_KINDS = {
    "BkToCstmrAcctRpt": "camt.052",
    "BkToCstmrStmt": "camt.053",
    "BkToCstmrDbtCdtNtfctn": "camt.054",
}
RECORD_ELEMENTS = {"camt.052": "Rpt", "camt.053": "Stmt", "camt.054": "Ntfctn"}
_NAMESPACE = re.compile(r"camt\.(05[234])\.001\.(\d{2,})$")

# ISO amounts are unsigned decimals of at most 18 digits; the currency bounds the decimals.
_AMOUNT = re.compile(r"(\d{1,18})(?:\.(\d{1,17}))?", re.ASCII)
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?", re.ASCII)
_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?", re.ASCII
)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}

RELATED_PARTY_ROLES = {
    "Dbtr": "debtor",
    "Cdtr": "creditor",
    "UltmtDbtr": "ultimate_debtor",
    "UltmtCdtr": "ultimate_creditor",
    "InitgPty": "initiating_party",
}


# -- The model -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Amount:
    value: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Account:
    """The account a statement is about: an IBAN, or another identification."""

    iban: str | None
    other_id: str | None
    currency: str | None = None
    owner_name: str | None = None

    @property
    def identification(self) -> str | None:
        return self.iban or self.other_id


@dataclass(frozen=True, slots=True)
class Balance:
    """``type`` is the ISO code (OPBD, CLBD, ITBD, OPAV, CLAV...) or the proprietary one."""

    type: str
    amount: Decimal
    currency: str
    credit_debit: str
    balance_date: date | None
    balance_time: datetime | None = None

    @property
    def signed_amount(self) -> Decimal:
        return -self.amount if self.credit_debit == DEBIT else self.amount


@dataclass(frozen=True, slots=True)
class BankTransactionCode:
    domain: str | None = None
    family: str | None = None
    sub_family: str | None = None
    proprietary: str | None = None
    proprietary_issuer: str | None = None


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """``NtryDtls/Btch``: the entry books a batch the account owner sent or received."""

    message_id: str | None
    payment_information_id: str | None
    number_of_transactions: int | None
    total: Amount | None = None
    credit_debit: str | None = None


@dataclass(frozen=True, slots=True)
class StructuredRemittance:
    creditor_reference: str | None
    creditor_reference_type: str | None = None  # SCOR, or the proprietary type
    additional_info: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RelatedParty:
    role: str  # debtor, creditor, ultimate_debtor, ultimate_creditor, initiating_party
    name: str | None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionDetail:
    """One ``TxDtls``: a single payment inside an entry. ``credit_debit`` is the entry's
    when the detail does not say (versions before 001.03 never do)."""

    index: int  # from 1, across the entry's NtryDtls
    amount: Decimal | None
    currency: str | None
    credit_debit: str
    end_to_end_id: str | None = None
    instruction_id: str | None = None
    transaction_id: str | None = None
    uetr: str | None = None
    account_servicer_ref: str | None = None
    message_id: str | None = None
    payment_information_id: str | None = None
    mandate_id: str | None = None
    proprietary_refs: tuple[tuple[str | None, str | None], ...] = ()
    unstructured: tuple[str, ...] = ()
    structured: tuple[StructuredRemittance, ...] = ()
    related_parties: tuple[RelatedParty, ...] = ()
    charges: Amount | None = None
    additional_info: str | None = None

    @property
    def creditor_reference(self) -> str | None:
        return next((s.creditor_reference for s in self.structured if s.creditor_reference), None)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``Ntry``: an amount booked (or pending, or for information) on the account.

    ``booking_time``/``value_time`` are set when the bank gave a date-time; the dates are
    then that date-time's own calendar date, as the bank wrote it.
    """

    index: int  # from 1, within its statement
    amount: Decimal
    currency: str
    credit_debit: str
    status: str  # BOOK, PDNG, INFO (FUTR, or a proprietary code, from 001.08)
    reversal: bool = False
    booking_date: date | None = None
    booking_time: datetime | None = None
    value_date: date | None = None
    value_time: datetime | None = None
    reference: str | None = None  # NtryRef
    account_servicer_ref: str | None = None
    bank_transaction_code: BankTransactionCode | None = None
    batches: tuple[BatchInfo, ...] = ()
    charges: Amount | None = None
    transactions: tuple[TransactionDetail, ...] = ()
    additional_info: str | None = None

    @property
    def direction(self) -> Direction:
        return Direction.CREDIT if self.credit_debit == CREDIT else Direction.DEBIT

    @property
    def batch(self) -> BatchInfo | None:
        return self.batches[0] if self.batches else None


@dataclass(frozen=True, slots=True)
class Statement:
    """A camt.053 ``Stmt``, camt.052 ``Rpt`` or camt.054 ``Ntfctn`` (``element`` says
    which): the entries of one account over a period."""

    element: str
    index: int  # from 1, within the message
    id: str
    account: Account
    created_on: datetime | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None
    electronic_sequence: str | None = None
    legal_sequence: str | None = None
    page_number: str | None = None
    last_page: bool | None = None
    copy_duplicate: str | None = None
    balances: tuple[Balance, ...] = ()
    entries: tuple[Entry, ...] = ()
    additional_info: str | None = None


@dataclass(frozen=True, slots=True)
class CamtMessage:
    """``kind`` is "camt.053" etc.; ``version`` the namespace's message version (8 for
    ``camt.053.001.08``), None when the document has no camt namespace."""

    kind: str
    version: int | None
    namespace: str | None
    message_id: str
    created_on: datetime
    statements: tuple[Statement, ...]
    additional_info: str | None = None

    @property
    def entries(self) -> Iterator[Entry]:
        for statement in self.statements:
            yield from statement.entries


# -- Safe XML into a small tree ------------------------------------------------------------


# Most elements are leaves without attributes: sharing these (never changed) halves a
# large file's tree.
_NO_CHILDREN: list[_Element] = []
_NO_ATTRIBUTES: dict[str, str] = {}


class _Element:
    """An element by local name, with its start line and (stripped) text."""

    __slots__ = ("attributes", "children", "line", "name", "text")

    def __init__(self, name: str, attributes: dict[str, str], line: int) -> None:
        self.name = name
        self.attributes = attributes
        self.line = line
        self.children = _NO_CHILDREN
        self.text = ""

    def add(self, element: _Element) -> None:
        if self.children is _NO_CHILDREN:
            self.children = [element]
        else:
            self.children.append(element)

    def child(self, name: str) -> _Element | None:
        for element in self.children:
            if element.name == name:
                return element
        return None

    def all(self, name: str) -> list[_Element]:
        return [element for element in self.children if element.name == name]

    def text_of(self, name: str) -> str | None:
        element = self.child(name)
        return (element.text or None) if element is not None else None

    def path_text(self, *names: str) -> str | None:
        element: _Element | None = self
        for name in names:
            element = element.child(name) if element is not None else None
        return (element.text or None) if element is not None else None


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _read_tree(data: bytes) -> tuple[_Element, str | None]:
    """The document element and its namespace, or a rejection at the first fault."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    document = _Element("#document", {}, 0)
    stack = [document]
    namespaces: list[str | None] = []
    local_names: dict[str, str] = {}  # "urn:...camt.053.001.08 Ntry" -> "Ntry", one string

    def start(name: str, attributes: dict[str, str]) -> None:
        if len(stack) > MAX_DEPTH:
            raise _Refused(parser.CurrentLineNumber, f"elements nest deeper than {MAX_DEPTH}")
        local = local_names.get(name)
        if local is None:
            namespace, _, local = name.rpartition(" ")
            local_names[name] = local
            if not namespaces:
                namespaces.append(namespace or None)
        if attributes:
            attributes = {key.rpartition(" ")[2]: value for key, value in attributes.items()}
        else:
            attributes = _NO_ATTRIBUTES
        element = _Element(local, attributes, parser.CurrentLineNumber)
        stack[-1].add(element)
        stack.append(element)

    def end(_name: str) -> None:
        element = stack.pop()
        element.text = element.text.strip()

    def text(chunk: str) -> None:
        stack[-1].text += chunk

    def refuse_dtd(*_args: object) -> None:
        raise _Refused(
            parser.CurrentLineNumber,
            "a DOCTYPE is refused: statements need none, and it is how entities get in",
        )

    def refuse_external_entity(
        _context: str, _base: str | None, _system_id: str | None, _public_id: str | None
    ) -> int:
        refuse_dtd()
        return 0  # never reached: refusing raises; a 0 would stop expat all the same

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.ExternalEntityRefHandler = refuse_external_entity
    try:
        parser.Parse(data, True)
    except _Refused as refused:
        raise StatementRejected([FileError(f"line {refused.line}", refused.message)]) from None
    except expat.ExpatError as error:
        reason = expat.ErrorString(error.code) or "malformed"
        location = f"line {error.lineno}, column {error.offset + 1}"
        raise StatementRejected([FileError(location, f"not well-formed XML: {reason}")]) from None
    if not document.children:
        raise StatementRejected([FileError("line 1", "the file has no XML element")])
    return document.children[0], namespaces[0]


# -- Reading the tree into the model -------------------------------------------------------


def _shown(text: str) -> str:
    """A value quoted for an error message, cut short: files can hold anything."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


class _Reader:
    """Reads elements into the model, noting every fault instead of stopping at the first.

    Methods return None for what they could not read; the fault is then in ``errors``, and
    :func:`parse_camt` raises before anything half-read leaves this module.
    """

    def __init__(self) -> None:
        self.errors = ErrorCollector()

    def fault(self, element: _Element, path: str, message: str) -> None:
        self.errors.add(f"line {element.line}, {path}", message)

    def missing(self, parent: _Element, path: str, name: str) -> None:
        self.fault(parent, path, f"missing {name}")

    def required(self, parent: _Element, path: str, name: str) -> _Element | None:
        element = parent.child(name)
        if element is None:
            self.missing(parent, path, name)
        return element

    def required_text(self, parent: _Element, path: str, name: str) -> str | None:
        element = self.required(parent, path, name)
        if element is not None and not element.text:
            self.fault(element, f"{path}/{name}", f"{name} is empty")
            return None
        return element.text if element is not None else None

    # -- values

    def amount(self, element: _Element, path: str) -> Amount | None:
        currency = element.attributes.get("Ccy")
        if currency is None:
            self.fault(element, path, "the amount has no Ccy")
            return None
        if not _CURRENCY.fullmatch(currency) or currency not in CURRENCY_EXPONENTS:
            self.fault(element, path, f"currency {_shown(currency)} is not supported")
            return None
        match = _AMOUNT.fullmatch(element.text)
        if match is None:
            self.fault(element, path, f"{_shown(element.text)} is not an amount")
            return None
        decimals = len(match.group(2) or "")
        if decimals > CURRENCY_EXPONENTS[currency]:
            self.fault(
                element,
                path,
                f"{element.text} {currency} has {decimals} decimals; "
                f"{currency} has {CURRENCY_EXPONENTS[currency]}",
            )
            return None
        value = Decimal(element.text)
        if value.scaleb(CURRENCY_EXPONENTS[currency]) > MAX_AMOUNT_MINOR:
            self.fault(element, path, f"{element.text} {currency} is too large")
            return None
        return Amount(value, currency)

    def amount_in(self, parent: _Element, path: str, name: str) -> Amount | None:
        element = parent.child(name)
        return self.amount(element, f"{path}/{name}") if element is not None else None

    def credit_debit(self, parent: _Element, path: str, *, required: bool) -> str | None:
        element = parent.child("CdtDbtInd")
        if element is None:
            if required:
                self.missing(parent, path, "CdtDbtInd")
            return None
        if element.text not in (CREDIT, DEBIT):
            self.fault(element, f"{path}/CdtDbtInd", f"{_shown(element.text)} is not CRDT/DBIT")
            return None
        return element.text

    def boolean(self, parent: _Element, path: str, name: str) -> bool | None:
        element = parent.child(name)
        if element is None:
            return None
        value = _BOOLEANS.get(element.text)
        if value is None:
            self.fault(element, f"{path}/{name}", f"{_shown(element.text)} is not true/false")
        return value

    def integer(self, parent: _Element, path: str, name: str) -> int | None:
        element = parent.child(name)
        if element is None:
            return None
        if not (element.text.isascii() and element.text.isdigit()) or len(element.text) > 15:
            self.fault(element, f"{path}/{name}", f"{_shown(element.text)} is not a number")
            return None
        return int(element.text)

    def day(self, element: _Element, path: str) -> date | None:
        match = _DATE.fullmatch(element.text)
        try:
            value = date.fromisoformat(match.group(1)) if match else None
        except ValueError:  # 2024-02-30
            value = None
        if value is None:
            self.fault(element, path, f"{_shown(element.text)} is not a date (YYYY-MM-DD)")
        return value

    def moment(self, element: _Element, path: str) -> datetime | None:
        match = _DATE_TIME.fullmatch(element.text)
        value = None
        if match is not None:
            whole, fraction, offset = match.groups()
            # fromisoformat takes at most microseconds, and "Z" only from Python 3.11 on.
            fraction = (fraction or "")[:7]
            offset = "+00:00" if offset == "Z" else (offset or "")
            try:
                value = datetime.fromisoformat(whole + fraction + offset)
            except ValueError:
                value = None
        if value is None:
            self.fault(element, path, f"{_shown(element.text)} is not an ISO date-time")
        return value

    def moment_in(self, parent: _Element, path: str, name: str) -> datetime | None:
        element = parent.child(name)
        return self.moment(element, f"{path}/{name}") if element is not None else None

    def date_or_time(
        self, parent: _Element, path: str, name: str
    ) -> tuple[date | None, datetime | None]:
        """``BookgDt``, ``ValDt`` and a balance's ``Dt``: a ``Dt`` or a ``DtTm`` inside."""
        holder = parent.child(name)
        if holder is None:
            return None, None
        path = f"{path}/{name}"
        if (day := holder.child("Dt")) is not None:
            return self.day(day, f"{path}/Dt"), None
        if (moment := holder.child("DtTm")) is not None:
            value = self.moment(moment, f"{path}/DtTm")
            return (value.date() if value else None), value
        self.fault(holder, path, f"{name} has neither Dt nor DtTm")
        return None, None

    # -- the message

    def message(self, root: _Element, namespace: str | None) -> CamtMessage:
        if root.name != "Document":
            self.fault(root, root.name, f"the root element is {root.name}, not Document")
            raise StatementRejected(self.errors.errors)
        body = root.children[0] if root.children else None
        kind = MESSAGE_KINDS.get(body.name) if body is not None else None
        if body is None or kind is None:
            found = body.name if body is not None else "nothing"
            self.fault(
                body or root,
                "Document",
                f"Document holds {found}: not a camt.052, camt.053 or camt.054 message",
            )
            raise StatementRejected(self.errors.errors)
        version = self.version(body, kind, namespace)
        header = self.required(body, body.name, "GrpHdr")
        message_id = created_on = None
        if header is not None:
            message_id = self.required_text(header, "GrpHdr", "MsgId")
            if (created := self.required(header, "GrpHdr", "CreDtTm")) is not None:
                created_on = self.moment(created, "GrpHdr/CreDtTm")
        record_name = RECORD_ELEMENTS[kind]
        records = body.all(record_name)
        if not records:
            self.fault(body, body.name, f"{body.name} has no {record_name}")
        statements = [
            self.statement(record, f"{record_name}[{index}]", index)
            for index, record in enumerate(records, start=1)
        ]
        self.errors.raise_if_any()
        assert message_id is not None  # else raise_if_any raised
        assert created_on is not None
        return CamtMessage(
            kind=kind,
            version=version,
            namespace=namespace,
            message_id=message_id,
            created_on=created_on,
            statements=tuple(s for s in statements if s is not None),
            additional_info=header.text_of("AddtlInf") if header is not None else None,
        )

    def version(self, body: _Element, kind: str, namespace: str | None) -> int | None:
        match = _NAMESPACE.search(namespace or "")
        if match is None:
            return None
        if f"camt.{match.group(1)}" != kind:
            self.fault(body, body.name, f"{body.name} is a {kind} element in a {match[0]} file")
        return int(match.group(2))

    def statement(self, element: _Element, path: str, index: int) -> Statement | None:
        statement_id = self.required_text(element, path, "Id")
        account = self.account(element, path)
        from_to = element.child("FrToDt")
        pagination = next((c for c in element.children if c.name.endswith("Pgntn")), None)
        balances = [
            self.balance(balance, f"{path}/Bal[{number}]")
            for number, balance in enumerate(element.all("Bal"), start=1)
        ]
        entries = [
            self.entry(entry, f"{path}/Ntry[{number}]", number)
            for number, entry in enumerate(element.all("Ntry"), start=1)
        ]
        created_on = self.moment_in(element, path, "CreDtTm")
        from_time = self.moment_in(from_to, f"{path}/FrToDt", "FrDtTm") if from_to else None
        to_time = self.moment_in(from_to, f"{path}/FrToDt", "ToDtTm") if from_to else None
        last_page = self.boolean(pagination, path, "LastPgInd") if pagination else None
        if statement_id is None or account is None:
            return None
        return Statement(
            element=element.name,
            index=index,
            id=statement_id,
            account=account,
            created_on=created_on,
            from_time=from_time,
            to_time=to_time,
            electronic_sequence=element.text_of("ElctrncSeqNb"),
            legal_sequence=element.text_of("LglSeqNb"),
            page_number=pagination.text_of("PgNb") if pagination else None,
            last_page=last_page,
            copy_duplicate=element.text_of("CpyDplctInd"),
            balances=tuple(b for b in balances if b is not None),
            entries=tuple(e for e in entries if e is not None),
            additional_info=next(
                (c.text for c in element.children if c.name.startswith("Addtl") and c.text),
                None,
            ),
        )

    def account(self, statement: _Element, path: str) -> Account | None:
        account = self.required(statement, path, "Acct")
        if account is None:
            return None
        identification = self.required(account, f"{path}/Acct", "Id")
        if identification is None:
            return None
        iban = identification.text_of("IBAN")
        other = identification.path_text("Othr", "Id")
        if iban is None and other is None:
            self.fault(identification, f"{path}/Acct/Id", "neither IBAN nor Othr/Id is given")
            return None
        return Account(
            iban=iban,
            other_id=other,
            currency=account.text_of("Ccy"),
            owner_name=account.path_text("Ownr", "Nm"),
        )

    def balance(self, element: _Element, path: str) -> Balance | None:
        kind = element.path_text("Tp", "CdOrPrtry", "Cd") or element.path_text(
            "Tp", "CdOrPrtry", "Prtry"
        )
        if kind is None:
            self.missing(element, path, "Tp/CdOrPrtry")
        amount_element = self.required(element, path, "Amt")
        amount = self.amount(amount_element, f"{path}/Amt") if amount_element else None
        credit_debit = self.credit_debit(element, path, required=True)
        on, at = self.date_or_time(element, path, "Dt")
        if kind is None or amount is None or credit_debit is None:
            return None
        return Balance(kind, amount.value, amount.currency, credit_debit, on, at)

    def entry(self, element: _Element, path: str, index: int) -> Entry | None:
        amount_element = self.required(element, path, "Amt")
        amount = self.amount(amount_element, f"{path}/Amt") if amount_element else None
        credit_debit = self.credit_debit(element, path, required=True)
        status = self.status(element, path)
        reversal = self.boolean(element, path, "RvslInd")
        booking_date, booking_time = self.date_or_time(element, path, "BookgDt")
        value_date, value_time = self.date_or_time(element, path, "ValDt")
        charges = self.charges(element, path)
        batches: list[BatchInfo | None] = []
        details: list[TransactionDetail | None] = []
        for number, group in enumerate(element.all("NtryDtls"), start=1):
            group_path = f"{path}/NtryDtls[{number}]"
            if (batch := group.child("Btch")) is not None:
                batches.append(self.batch(batch, f"{group_path}/Btch"))
            for number_in_group, detail in enumerate(group.all("TxDtls"), start=1):
                detail_path = f"{group_path}/TxDtls[{number_in_group}]"
                details.append(self.detail(detail, detail_path, len(details) + 1, credit_debit))
        if amount is None or credit_debit is None or status is None:
            return None
        return Entry(
            index=index,
            amount=amount.value,
            currency=amount.currency,
            credit_debit=credit_debit,
            status=status,
            reversal=bool(reversal),
            booking_date=booking_date,
            booking_time=booking_time,
            value_date=value_date,
            value_time=value_time,
            reference=element.text_of("NtryRef"),
            account_servicer_ref=element.text_of("AcctSvcrRef"),
            bank_transaction_code=_bank_transaction_code(element.child("BkTxCd")),
            batches=tuple(b for b in batches if b is not None),
            charges=charges,
            transactions=tuple(d for d in details if d is not None),
            additional_info=element.text_of("AddtlNtryInf"),
        )

    def status(self, entry: _Element, path: str) -> str | None:
        element = self.required(entry, path, "Sts")
        if element is None:
            return None
        # Up to 001.07 the code is the element's text; from 001.08 it sits in Cd or Prtry.
        status = element.text or element.text_of("Cd") or element.text_of("Prtry")
        if status is None:
            self.fault(element, f"{path}/Sts", "Sts is empty")
        return status

    def charges(self, parent: _Element, path: str) -> Amount | None:
        """The total of ``Chrgs``: its ``TtlChrgsAndTaxAmt``, else the sum of its amounts
        (``Rcrd/Amt`` from 001.03, ``Amt`` before)."""
        amounts: list[Amount | None] = []
        for number, charges in enumerate(parent.all("Chrgs"), start=1):
            charges_path = f"{path}/Chrgs[{number}]"
            total = self.amount_in(charges, charges_path, "TtlChrgsAndTaxAmt")
            if total is not None or charges.child("TtlChrgsAndTaxAmt") is not None:
                amounts.append(total)
                continue
            amounts.append(self.amount_in(charges, charges_path, "Amt"))
            for record_number, record in enumerate(charges.all("Rcrd"), start=1):
                record_path = f"{charges_path}/Rcrd[{record_number}]"
                amounts.append(self.amount_in(record, record_path, "Amt"))
        known = [amount for amount in amounts if amount is not None]
        if not known:
            return None
        currencies = {amount.currency for amount in known}
        if len(currencies) > 1:
            self.fault(parent, f"{path}/Chrgs", "charges are in more than one currency")
            return None
        return Amount(sum((amount.value for amount in known), Decimal(0)), known[0].currency)

    def batch(self, element: _Element, path: str) -> BatchInfo:
        return BatchInfo(
            message_id=element.text_of("MsgId"),
            payment_information_id=element.text_of("PmtInfId"),
            number_of_transactions=self.integer(element, path, "NbOfTxs"),
            total=self.amount_in(element, path, "TtlAmt"),
            credit_debit=self.credit_debit(element, path, required=False),
        )

    def detail(
        self, element: _Element, path: str, index: int, entry_credit_debit: str | None
    ) -> TransactionDetail | None:
        amount = self.amount_in(element, path, "Amt")
        if amount is None and element.child("Amt") is None:
            # Before 001.03 a detail's amount is in AmtDtls, the account's currency first.
            amount_details = element.child("AmtDtls")
            for kind in ("TxAmt", "InstdAmt"):
                holder = amount_details.child(kind) if amount_details else None
                if holder is not None:
                    amount = self.amount_in(holder, f"{path}/AmtDtls/{kind}", "Amt")
                    break
        own_credit_debit = self.credit_debit(element, path, required=False)
        credit_debit = own_credit_debit or entry_credit_debit
        refs = element.child("Refs") or _Element("Refs", {}, element.line)
        remittance = element.child("RmtInf")
        charges = self.charges(element, path)
        if credit_debit is None:
            return None
        return TransactionDetail(
            index=index,
            amount=amount.value if amount else None,
            currency=amount.currency if amount else None,
            credit_debit=credit_debit,
            end_to_end_id=refs.text_of("EndToEndId"),
            instruction_id=refs.text_of("InstrId"),
            transaction_id=refs.text_of("TxId"),
            uetr=refs.text_of("UETR"),
            account_servicer_ref=refs.text_of("AcctSvcrRef"),
            message_id=refs.text_of("MsgId"),
            payment_information_id=refs.text_of("PmtInfId"),
            mandate_id=refs.text_of("MndtId"),
            proprietary_refs=tuple(
                (prtry.text_of("Tp"), prtry.text_of("Ref")) for prtry in refs.all("Prtry")
            ),
            unstructured=_unstructured(remittance),
            structured=_structured(remittance),
            related_parties=_related_parties(element.child("RltdPties")),
            charges=charges,
            additional_info=element.text_of("AddtlTxInf"),
        )


def _bank_transaction_code(element: _Element | None) -> BankTransactionCode | None:
    if element is None or not element.children:
        return None
    return BankTransactionCode(
        domain=element.path_text("Domn", "Cd"),
        family=element.path_text("Domn", "Fmly", "Cd"),
        sub_family=element.path_text("Domn", "Fmly", "SubFmlyCd"),
        proprietary=element.path_text("Prtry", "Cd"),
        proprietary_issuer=element.path_text("Prtry", "Issr"),
    )


def _unstructured(remittance: _Element | None) -> tuple[str, ...]:
    if remittance is None:
        return ()
    return tuple(line.text for line in remittance.all("Ustrd") if line.text)


def _structured(remittance: _Element | None) -> tuple[StructuredRemittance, ...]:
    if remittance is None:
        return ()
    return tuple(
        StructuredRemittance(
            creditor_reference=block.path_text("CdtrRefInf", "Ref"),
            creditor_reference_type=block.path_text("CdtrRefInf", "Tp", "CdOrPrtry", "Cd")
            or block.path_text("CdtrRefInf", "Tp", "CdOrPrtry", "Prtry"),
            additional_info=tuple(info.text for info in block.all("AddtlRmtInf") if info.text),
        )
        for block in remittance.all("Strd")
    )


def _related_parties(parties: _Element | None) -> tuple[RelatedParty, ...]:
    if parties is None:
        return ()
    found = []
    for element in parties.children:
        role = RELATED_PARTY_ROLES.get(element.name)
        if role is None:
            continue
        # From 001.08 a party sits in Pty (a person or organisation) or Agt (a bank).
        name = (
            element.text_of("Nm")
            or element.path_text("Pty", "Nm")
            or element.path_text("Agt", "FinInstnId", "Nm")
        )
        account = parties.child(f"{element.name}Acct")
        account_id = (
            account.path_text("Id", "IBAN") or account.path_text("Id", "Othr", "Id")
            if account is not None
            else None
        )
        found.append(RelatedParty(role, name, account_id))
    return tuple(found)


def parse_camt(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> CamtMessage:
    """Read a camt.052/053/054 document, or refuse it whole with every fault located."""
    if len(data) > max_bytes:
        raise StatementRejected(
            [FileError("file", f"the file has {len(data)} bytes; at most {max_bytes} are read")]
        )
    with collector_paused():
        root, namespace = _read_tree(data)
        return _Reader().message(root, namespace)


# -- Flattening to external records --------------------------------------------------------


def camt_records(message: CamtMessage) -> list[ExternalRecord]:
    """The booked entries of ``message`` as external records, in file order.

    Only ``BOOK`` entries count: ``PDNG`` ones may still change or vanish, and ``INFO``
    ones moved no money; the statement that books them brings them. An entry of zero
    moved nothing either. An entry with at most one transaction detail is one payment;
    one with more, or whose batch counts more than one transaction, is a batch: one
    record, whose members are its details.
    """
    records: list[ExternalRecord] = []
    occurrences = Occurrences()
    for statement in message.statements:
        for entry in statement.entries:
            if entry.status != BOOKED or entry.amount == 0:
                continue
            location = f"{statement.element}[{statement.index}]/Ntry[{entry.index}]"
            records.append(_record(statement, entry, location, occurrences))
    return records


def _record(
    statement: Statement, entry: Entry, location: str, occurrences: Occurrences
) -> ExternalRecord:
    amount = _minor(entry.amount, entry.currency)
    fees = _fees(entry, location)
    details = entry.transactions
    batch_count = max((b.number_of_transactions or 0 for b in entry.batches), default=0)
    if len(details) >= 2 or batch_count > 1:
        members = tuple(_member(detail, entry.currency) for detail in details)
        end_to_end_id = uetr = None
        reference = entry.reference
        batch_reference = _batch_reference(entry)
    else:
        single = details[0] if details else None
        members = ()
        end_to_end_id = _end_to_end_id(single)
        reference = _reference(single) or entry.reference
        uetr = single.uetr if single else None
        batch_reference = None
        if single is not None and fees == 0 and single.charges is not None:
            fees = _minor_in(single.charges, entry.currency, location)
    external_id = entry.account_servicer_ref or entry.reference
    if external_id is None:
        external_id = digest_id(
            [
                statement.account.identification,
                entry.booking_date,
                entry.value_date,
                amount,
                entry.currency,
                entry.direction,
                end_to_end_id,
                *(member.end_to_end_id for member in members),
                reference,
                *(member.reference for member in members),
                batch_reference,
            ]
        )
    return ExternalRecord(
        external_id=occurrences.number(external_id),
        direction=entry.direction,
        amount=amount,
        currency=entry.currency,
        value_date=entry.value_date,
        booking_date=entry.booking_date,
        end_to_end_id=end_to_end_id,
        reference=reference,
        batch_reference=batch_reference,
        members=members,
        fees=fees,
        uetr=uetr,
        location=location,
    )


def _minor(amount: Decimal, currency: str) -> int:
    # Exact: parsing refused more decimals than the currency has.
    return int(amount.scaleb(CURRENCY_EXPONENTS[currency]))


def _minor_in(amount: Amount, currency: str, location: str) -> int:
    if amount.currency != currency:
        raise StatementRejected(
            [FileError(location, f"charges in {amount.currency} on an entry in {currency}")]
        )
    return _minor(amount.value, currency)


def _fees(entry: Entry, location: str) -> int:
    return _minor_in(entry.charges, entry.currency, location) if entry.charges else 0


def _end_to_end_id(detail: TransactionDetail | None) -> str | None:
    if detail is None or detail.end_to_end_id is None:
        return None
    return None if detail.end_to_end_id.upper() == NOT_PROVIDED else detail.end_to_end_id


def _reference(detail: TransactionDetail | None) -> str | None:
    if detail is None:
        return None
    return detail.creditor_reference or (" ".join(detail.unstructured) or None)


def _member(detail: TransactionDetail, currency: str) -> BatchMember:
    # A detail's amount in another currency (the instructed one) is not part of the batch's.
    gross = (
        _minor(detail.amount, currency)
        if detail.amount is not None and detail.currency == currency
        else None
    )
    return BatchMember(_end_to_end_id(detail), _reference(detail), gross)


def _batch_reference(entry: Entry) -> str | None:
    for batch in entry.batches:
        if batch.payment_information_id:
            return batch.payment_information_id
    for batch in entry.batches:
        if batch.message_id:
            return batch.message_id
    return entry.account_servicer_ref
