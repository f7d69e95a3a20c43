"""Identity's use cases: onboarding partners and clients, operator accounts and sessions."""
