"""Imports every feature's tables so ``metadata`` is complete (for Alembic and the tests)."""

from bookshelf.books import models as books_models
from bookshelf.idempotency import models as idempotency_models
from bookshelf.metadata import metadata

__all__ = ["books_models", "idempotency_models", "metadata"]
