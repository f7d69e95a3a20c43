"""The kernel: pure rules every capability shares (money, ids, clock, errors, Pakistani
identifiers, masking). It imports no framework, no I/O library and nothing else of amanat."""
