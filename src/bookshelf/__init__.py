"""Bookshelf: a production-ready book catalog service built on FastAPI."""

__version__ = "0.1.0"
