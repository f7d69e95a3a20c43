"""The operator console: server-rendered pages over the capabilities' services."""
