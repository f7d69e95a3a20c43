"""Identity: partners and their OAuth clients, console operators, their roles and sessions."""
