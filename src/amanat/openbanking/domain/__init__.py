"""Open banking's pure rules: consents and their lifecycle, permissions, what a consent
lets a TPP see."""
