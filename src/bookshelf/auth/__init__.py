"""Authentication: credentials, password sign-in, sessions, access and refresh tokens, roles."""
