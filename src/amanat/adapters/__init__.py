"""I/O behind small interfaces: database, rails, crypto, parsers, transports."""
