"""The tamper-evident audit trail: hash-chained records, signed seals, witnesses, the sealer."""
