"""One database for all capabilities: engine, dialect quirks, column types, transactions, migrations."""
