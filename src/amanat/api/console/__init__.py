"""The operator console: server-rendered HTML (Jinja2 + htmx) over the operator services."""
