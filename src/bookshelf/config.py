"""Settings: the only place that reads the environment.

Every setting has a ``BOOKSHELF_`` environment variable (see ``.env.example``); a ``.env`` file in
the working directory is read too. ``Settings`` is passed explicitly to ``create_app`` so tests can
build their own; ``get_settings()`` caches the one built from the environment.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./bookshelf.db"

# Drivers we accept, and the async driver each URL scheme is rewritten to.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Bookshelf configuration, read from ``BOOKSHELF_*`` variables and an optional ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="BOOKSHELF_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    database_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 5
    database_pool_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    database_echo: bool = False
    # None means "decide from the database": on for the embedded SQLite default (first run just
    # works), off for PostgreSQL, where migrations run once per deploy (`bookshelf migrate`), not
    # once per instance.
    auto_migrate: bool | None = None
    max_body_bytes: Annotated[int, Field(ge=1024, le=100 * 1024 * 1024)] = 1024 * 1024
    idempotency_ttl_seconds: Annotated[int, Field(ge=60)] = 24 * 60 * 60
    # A request that holds an idempotency key longer than this is presumed dead, so a retry may
    # take the key over instead of getting 409 forever.
    idempotency_lock_seconds: Annotated[int, Field(ge=1)] = 60
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (expected sqlite:///… or postgresql://…)"
            ) from None
        driver = _ASYNC_DRIVERS.get(url.drivername)
        if driver is None:
            raise ValueError(f"unsupported database {url.drivername!r}: use sqlite or postgresql")
        return url.set(drivername=driver).render_as_string(hide_password=False)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


class ConfigurationError(Exception):
    """Raised when the environment holds an invalid setting; its message is one line."""


def describe_settings_error(error: ValidationError) -> str:
    """One line per bad setting, naming its environment variable, with no traceback."""
    problems = []
    for item in error.errors():
        name = "BOOKSHELF_" + "_".join(str(part) for part in item["loc"]).upper()
        problems.append(f"{name}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def load_settings() -> Settings:
    """Build settings from the environment, turning validation errors into ConfigurationError."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(describe_settings_error(error)) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
