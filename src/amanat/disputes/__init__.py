"""Disputes on collections and payouts: opened by a merchant, an operator or the rail,
answered with evidence and a response, decided, and their money held, released or
reversed in the ledger (docs/disputes.md)."""
