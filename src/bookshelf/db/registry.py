"""Imports every feature's tables so ``metadata`` is complete (for Alembic and the tests)."""

from bookshelf.auth import models as auth_models
from bookshelf.books import models as books_models
from bookshelf.db.metadata import metadata
from bookshelf.idempotency import models as idempotency_models
from bookshelf.mail import models as mail_models
from bookshelf.reviews import models as reviews_models
from bookshelf.users import models as users_models

__all__ = [
    "auth_models",
    "books_models",
    "idempotency_models",
    "mail_models",
    "metadata",
    "reviews_models",
    "users_models",
]
