"""Auth: the OAuth 2.0 authorization server and, in verification.py, the access-token check
every capability's routes use."""
