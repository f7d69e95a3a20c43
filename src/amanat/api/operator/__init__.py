"""The operator API (``/operator/v1``): people at the bank or PSP running the platform.

Authenticated by a server-side session cookie (set by login with password + TOTP), with a
CSRF token required on every state-changing request, and authorised per permission.
"""
