"""Identity's adapters: operator password hashing, client secret digests."""
