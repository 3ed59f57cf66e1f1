"""The first admin without a shell: ``BOOKSHELF_FIRST_ADMIN_EMAIL`` and
``BOOKSHELF_FIRST_ADMIN_PASSWORD`` create that verified admin when the address is free.

The setting only ever creates. An account that already has the address is never changed, so
whoever registered it first (a stranger, while registration was open) cannot be made an admin
by it, and an admin who was deactivated stays so:
- the address has an admin account (this setting made it, at an earlier start or on another
  instance): nothing to do;
- it has an account that is not an admin: nothing is changed, one line at error level says so,
  and production refuses to start (the setting cannot do what it says);
- it has none: the admin is created. Of instances starting at once, the unique email lets one
  insert win; the others then find the admin it made.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy import exists, select

from bookshelf.auth import service
from bookshelf.auth.exceptions import EmailAlreadyRegistered
from bookshelf.auth.passwords import PasswordHasher, password_problems
from bookshelf.auth.schemas import normalise_email
from bookshelf.config import ConfigurationError, Environment, Settings
from bookshelf.db.database import Database, unit_of_work
from bookshelf.users.models import users
from bookshelf.users.schemas import Role

logger = logging.getLogger("bookshelf")


class FirstAdmin(StrEnum):
    CREATED = "created"
    EXISTS = "exists"  # the address has an admin account: left as it is
    TAKEN = "taken"  # the address has an account that is not an admin: left as it is


async def _role_of(database: Database, email: str) -> str | None:
    async with unit_of_work(database, write=False) as connection:
        role = await connection.scalar(select(users.c.role).where(users.c.email == email))
    return None if role is None else str(role)


async def ensure_first_admin(
    database: Database, settings: Settings, hasher: PasswordHasher
) -> FirstAdmin:
    """Create the first admin if its address is free; ValueError for an unusable email or
    password. Never changes an existing account."""
    if settings.first_admin_email is None or settings.first_admin_password is None:
        raise ValueError("BOOKSHELF_FIRST_ADMIN_EMAIL and _PASSWORD are not set")
    email = normalise_email(settings.first_admin_email)
    password = settings.first_admin_password.get_secret_value()
    problems = password_problems(password, email=email)
    if problems:
        raise ValueError("BOOKSHELF_FIRST_ADMIN_PASSWORD " + "; ".join(problems))
    role = await _role_of(database, email)
    if role is None:
        # Hashed only when there is an account to create: a restart costs no hash.
        password_hash = await hasher.hash(password)
        try:
            async with unit_of_work(database, write=True) as connection:
                await service.create_user(
                    connection,
                    email=email,
                    password_hash=password_hash,
                    display_name=None,
                    role=Role.ADMIN,
                    email_verified=True,
                )
        except EmailAlreadyRegistered:  # another instance, or a registration, was first
            role = await _role_of(database, email)
        else:
            return FirstAdmin.CREATED
    return FirstAdmin.EXISTS if role == Role.ADMIN.value else FirstAdmin.TAKEN


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


TAKEN_MESSAGE = (
    "BOOKSHELF_FIRST_ADMIN_EMAIL names an account that already exists and is not an admin; "
    "it was left unchanged. Choose a free address, or make that account an admin with "
    "`bookshelf create-admin --promote`, then remove the setting"
)


async def prepare_accounts(database: Database, settings: Settings, hasher: PasswordHasher) -> None:
    """What a starting process does for accounts: the first admin, or the hint. Production
    refuses to start when the first admin's address belongs to someone else's account."""
    if settings.first_admin_email is None:
        await log_how_to_get_an_admin(database, settings)
        return
    outcome = await ensure_first_admin(database, settings, hasher)
    if outcome is FirstAdmin.TAKEN:
        logger.error(TAKEN_MESSAGE)
        if settings.environment is Environment.PRODUCTION:
            raise ConfigurationError(TAKEN_MESSAGE)
        return
    logger.info("first admin %s (%s)", settings.first_admin_email, outcome.value)
