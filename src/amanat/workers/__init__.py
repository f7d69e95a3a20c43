"""Background work: periodic jobs now, the outbox dispatcher as capabilities add it."""
