"""Rate limits: policies, the limiter over memory or Redis, and its HTTP dependency."""
