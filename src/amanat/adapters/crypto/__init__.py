"""Cryptography behind small interfaces: password hashing, token signing, key rings."""
