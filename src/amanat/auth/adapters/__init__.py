"""Auth's adapters: JWT access tokens, client assertions, an external issuer's JWKS."""
