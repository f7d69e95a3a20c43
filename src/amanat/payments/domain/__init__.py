"""Pure rules of payments: the payment state machine and the double-entry ledger."""
