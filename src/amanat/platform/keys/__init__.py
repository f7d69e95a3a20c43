"""Token-signing keys: their lifecycle and store."""
