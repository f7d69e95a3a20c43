"""Pure business rules: no framework, no I/O beyond reading packaged data files."""
