"""The authorization server's HTTP endpoints (RFC 6749, 7009, 7662, 8414, 7636, 7523)."""
