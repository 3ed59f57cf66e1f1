"""Bookshelf: a production-ready book catalog service built on FastAPI."""

__version__ = "1.0.0"
