"""The unit of work: one database transaction per business action, with its audit records
and the domain events handled inside it."""
