"""Pure rules of webhooks: event types and envelopes, endpoints, retry schedule."""
