"""Reconciliation and settlement: what each merchant was paid and why, per cycle, and what
the bank's and the rail's reports say that amanat's ledger does not (and the reverse)."""
