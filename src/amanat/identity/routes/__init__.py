"""HTTP edges of identity: the operator API."""
