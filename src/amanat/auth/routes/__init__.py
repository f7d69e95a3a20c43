"""HTTP edges of auth: the token, revocation, introspection and authorize endpoints."""
