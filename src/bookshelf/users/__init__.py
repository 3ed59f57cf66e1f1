"""Accounts: the users table, the account schemas and the list of accounts. Nothing here knows
about sign-in: ``auth`` builds on this package (the ``/users`` endpoints and the changes to a
password, an address or an account's access are ``auth.account_routes`` and ``auth.accounts``)."""
