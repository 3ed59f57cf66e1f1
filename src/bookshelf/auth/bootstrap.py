"""The first admin without a shell: ``BOOKSHELF_FIRST_ADMIN_EMAIL`` and
``BOOKSHELF_FIRST_ADMIN_PASSWORD`` create, or promote, that verified admin at every start.

Idempotent and safe when many instances start at once: the promotion is one UPDATE, and of
concurrent inserts the unique email lets one win; the others then promote what it made.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select

from bookshelf.auth import service
from bookshelf.auth.exceptions import EmailAlreadyRegistered
from bookshelf.auth.passwords import PasswordHasher, password_problems
from bookshelf.auth.schemas import normalise_email
from bookshelf.config import Environment, Settings
from bookshelf.db.database import Database, unit_of_work
from bookshelf.users.models import users
from bookshelf.users.schemas import Role

logger = logging.getLogger("bookshelf")


async def ensure_first_admin(database: Database, settings: Settings, hasher: PasswordHasher) -> str:
    """``"created"`` or ``"promoted"``; ValueError for an unusable email or password."""
    if settings.first_admin_email is None or settings.first_admin_password is None:
        raise ValueError("BOOKSHELF_FIRST_ADMIN_EMAIL and _PASSWORD are not set")
    email = normalise_email(settings.first_admin_email)
    password = settings.first_admin_password.get_secret_value()
    problems = password_problems(password, email=email)
    if problems:
        raise ValueError("BOOKSHELF_FIRST_ADMIN_PASSWORD " + "; ".join(problems))
    password_hash = await hasher.hash(password)
    for _ in range(2):
        try:
            async with unit_of_work(database, write=True) as connection:
                return await service.create_or_promote_admin(
                    connection, email=email, password_hash=password_hash, display_name=None
                )
        except EmailAlreadyRegistered:  # another instance created it meanwhile: promote it
            continue
    raise RuntimeError("could not create or promote the first admin")  # pragma: no cover


async def log_how_to_get_an_admin(database: Database, settings: Settings) -> None:
    """In development, when no admin exists, say exactly how to get one."""
    if settings.environment is not Environment.DEVELOPMENT:
        return
    async with unit_of_work(database, write=False) as connection:
        has_admin = await connection.scalar(
            select(exists().where(users.c.role == Role.ADMIN.value, users.c.is_active.is_(True)))
        )
    if not has_admin:
        logger.warning(
            "no admin account exists yet: run `.venv/bin/bookshelf create-admin --email "
            "you@example.org`, or set BOOKSHELF_FIRST_ADMIN_EMAIL and "
            "BOOKSHELF_FIRST_ADMIN_PASSWORD and restart"
        )


async def prepare_accounts(database: Database, settings: Settings, hasher: PasswordHasher) -> None:
    """What a starting process does for accounts: the first admin, or the hint."""
    if settings.first_admin_email is not None:
        outcome = await ensure_first_admin(database, settings, hasher)
        logger.info("first admin %s (%s)", settings.first_admin_email, outcome)
    else:
        await log_how_to_get_an_admin(database, settings)
