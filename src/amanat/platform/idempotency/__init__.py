"""Idempotency keys: the stored responses and the replay protocol every write route uses."""
