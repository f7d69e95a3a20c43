"""Encryption at rest as a service: data keys, data subjects and their blind indexes."""
