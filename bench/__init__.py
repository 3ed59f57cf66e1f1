"""Bookshelf's benchmark suite: ``python -m bench --help`` (see the README, "Performance")."""
