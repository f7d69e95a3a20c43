"""Open banking's adapters: the sandbox bank behind the CoreBanking port."""
