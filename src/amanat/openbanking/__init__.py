"""Open banking: OBIE v3.1.11-shaped account information, payment initiation and
confirmation of funds for licensed third-party providers, behind a PSU's consent."""
