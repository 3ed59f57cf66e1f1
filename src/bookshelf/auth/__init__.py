"""Identity: accounts, password login, access and refresh tokens, roles."""
