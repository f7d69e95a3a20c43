"""The platform: mechanisms every capability reuses (database and unit of work, the job
runtime, audit, crypto and keys, data protection, retention, idempotency, rate limits, the
HTTP plumbing, observability, settings). It knows no business capability."""
