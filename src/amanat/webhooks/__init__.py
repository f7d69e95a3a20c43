"""Webhooks: the event catalogue, partners' endpoints, signed delivery and the local listener.

Other capabilities publish what happened; this package turns it into partner events,
stores them for ``GET /v1/events`` and delivers them, signed, to each subscribed endpoint.
"""
