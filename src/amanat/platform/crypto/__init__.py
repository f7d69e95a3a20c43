"""Master keys, field encryption, JOSE helpers, encrypted exports and secret files."""
