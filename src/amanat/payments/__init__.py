"""Payments: payouts, collections and refunds, the ledger, the Raast rail and its callbacks."""
