"""The partner API, ``/v1``."""
