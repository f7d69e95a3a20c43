"""One database for every capability: engine, dialect quirks, column types, transactions,
migrations."""
