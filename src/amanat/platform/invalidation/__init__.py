"""Cross-process cache invalidation: a change transaction announces what it changed, and
every process that caches it hears of it (PostgreSQL LISTEN/NOTIFY)."""
