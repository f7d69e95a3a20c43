"""Use cases: one function per business action, over a unit of work and ports."""
