"""Settlement's and reconciliation's refusal codes, registered by their wiring."""

from __future__ import annotations

from amanat.platform.http.problems import ProblemType

PROBLEMS: list[ProblemType] = [
    ProblemType(
        "statement_rejected",
        422,
        "Statement file rejected",
        "The uploaded statement or report could not be read in full, so nothing of it was "
        "imported. `errors[]` lists every fault found (up to 100), each with its line or "
        "element.",
        "Fix the file where `errors[].pointer` says, or ask the bank for a fresh export, "
        "and import it again; a file already imported is recognised and changes nothing.",
    ),
    ProblemType(
        "unknown_source",
        422,
        "No such reconciliation source",
        "`source` names none of the reports amanat reconciles against.",
        "Use one of: sandbox_rail, bank_statement (camt.053/054), bank_csv.",
    ),
    ProblemType(
        "unknown_format",
        422,
        "No such statement format",
        "The format asked for is neither camt nor a known CSV profile.",
        "Use camt, sandbox_rail or bank_csv.",
    ),
    ProblemType(
        "file_too_large",
        413,
        "Statement file too large",
        "The file is larger than a statement import accepts.",
        "Split the statement by date, or import it with `amanat reconcile FILE`.",
    ),
    ProblemType(
        "break_already_resolved",
        409,
        "Break already resolved",
        "Someone resolved this break already (or its other half arrived and cleared it).",
        "Read the break again: `resolution`, `reason` and `resolved_by` say what happened.",
    ),
    ProblemType(
        "resolution_refused",
        409,
        "This resolution does not fit the break",
        "A manual match needs a counterpart that is open and agrees in direction, currency "
        "and amount; an adjustment needs the partner whose balance takes it; a break whose "
        "sides agree in money cannot be written off.",
        "Read `detail`; choose another resolution or name what is missing.",
    ),
    ProblemType(
        "invalid_resolution",
        422,
        "Unknown resolution",
        "`resolution` must be write_off, adjustment, manual_match or dismiss.",
        "Pick one of the four.",
    ),
    ProblemType(
        "reason_required",
        422,
        "A reason is required",
        "Every resolution is audited with its reason: 3 to 500 characters.",
        "Say why, in words an auditor will understand.",
    ),
    ProblemType(
        "cycle_not_over",
        409,
        "The cycle has not ended",
        "A settlement cycle closes only after its cut-off (Asia/Karachi).",
        "Close it after the cut-off; the worker closes each cycle by itself.",
    ),
    ProblemType(
        "cycle_already_closed",
        409,
        "The cycle is closed",
        "This business date's settlement cycle was closed already; its settlements are final.",
        "Read them with `GET /operator/v1/settlements?business_date=…`.",
    ),
    ProblemType(
        "cycle_out_of_order",
        409,
        "Close the earlier cycle first",
        "Settlement cycles close in order, so that no business day is skipped; an earlier "
        "business day's cycle is still open.",
        "Close the cycle `detail` names first (or let the worker close the due ones).",
    ),
    ProblemType(
        "not_a_business_day",
        409,
        "Not a business day",
        "Banks in Pakistan are closed on that date (weekend or holiday); its payments belong "
        "to the next business day's cycle.",
        "Close the next business day instead.",
    ),
    ProblemType(
        "settlement_ledger_mismatch",
        500,
        "Settlement does not tie to the ledger",
        "A settlement's lines did not explain the merchant's ledger balances, so the cycle "
        "was not closed (nothing was written).",
        "Run `amanat ledger check`, then follow the troubleshooting guide's entry for a "
        "settlement that does not tie to the ledger.",
    ),
]
