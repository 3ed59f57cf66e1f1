"""The web app for people, at ``/``: server-rendered pages over the same services as the API
(catalog, accounts, editing, administration). See ``install.install_web``."""
