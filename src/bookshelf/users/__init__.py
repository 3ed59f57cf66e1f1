"""Accounts: the users table, one's own profile, and admin control of every account."""
