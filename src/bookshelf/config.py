"""Settings: the only place that reads the environment.

Every setting has a ``BOOKSHELF_`` environment variable (see ``.env.example``); a ``.env`` file in
the working directory is read too. ``Settings`` is passed explicitly to ``create_app`` so tests can
build their own; ``get_settings()`` caches the one built from the environment.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Annotated

from limits import parse_many
from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from bookshelf.addresses import async_database_url, check_redis_url
from bookshelf.mail_settings import MailSettings
from bookshelf.production import DEVELOPMENT_SECRET, check_secrets_and_hosts, open_doors

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./bookshelf.db"


def _parse_rate_limit(value: str) -> str:
    try:
        parse_many(value)
    except ValueError:
        raise ValueError("not a rate limit such as '600/minute'") from None
    return value


RateLimit = Annotated[str, AfterValidator(_parse_rate_limit)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(MailSettings):
    """Bookshelf configuration, read from ``BOOKSHELF_*`` variables and an optional ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="BOOKSHELF_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    # Secret: a URL may carry a password, so the value never prints (``get_secret_value()``).
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    database_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    # Overflow connections are opened and closed again under sustained load (a connect per
    # request, measured in bench/): off by default, size the pool itself instead.
    database_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 0
    database_pool_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    database_echo: bool = False
    # Streaming replicas for reads (docs/replicas.md), comma-separated PostgreSQL URLs; empty: every
    # read goes to the primary. Ignored (with one log line) on SQLite. Secret: URLs carry passwords.
    database_replica_urls: SecretStr = SecretStr("")
    # A read presenting a WAL position (Bookshelf-Read-After) waits at most this long for a replica
    # to replay it, then goes to the primary.
    replica_wait_ms: Annotated[int, Field(ge=0, le=10_000)] = 50
    # A signed-in client's reads go to the primary for this long after its own write (per process).
    replica_sticky_seconds: Annotated[float, Field(ge=0, le=3600)] = 5.0
    # A replica further behind than this (or unreachable) is out of rotation until it catches up.
    replica_max_lag_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    # How often each process checks its replicas' reachability and lag.
    replica_check_seconds: Annotated[float, Field(gt=0, le=300)] = 1.0
    # None means "decide from the database": on for the embedded SQLite default (first run just
    # works), off for PostgreSQL, where migrations run once per deploy (`bookshelf migrate`), not
    # once per instance.
    auto_migrate: bool | None = None
    max_body_bytes: Annotated[int, Field(ge=1024, le=100 * 1024 * 1024)] = 1024 * 1024
    idempotency_ttl_seconds: Annotated[int, Field(ge=60)] = 24 * 60 * 60
    # A request that holds an idempotency key longer than this is presumed dead, so a retry may
    # take the key over instead of getting 409 forever.
    idempotency_lock_seconds: Annotated[int, Field(ge=1)] = 60
    # Most books one POST /books/import may hold (its lines), and its body cap, which replaces
    # max_body_bytes for that route only: 10,000 books of ~400 bytes are ~4 MiB.
    import_max_lines: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    import_max_body_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024 * 1024)] = 16 * 1024 * 1024
    # Imports running at once per worker process, each holding up to ~70 MiB at the caps
    # (bench/RESULTS.md); one more waits a few seconds for its turn, then is a 503.
    import_concurrency: Annotated[int, Field(ge=1, le=64)] = 1
    # Exports streaming at once per worker process, and from one client address (IPv6 by /64):
    # one more is refused at once, 503 (the worker's) or 429 (the address's), with Retry-After.
    export_concurrency: Annotated[int, Field(ge=1, le=1000)] = 4
    export_per_address: Annotated[int, Field(ge=1, le=1000)] = 2
    log_level: str = "INFO"

    # Tokens. HS256 with a secret from the environment; the first secret signs, the previous
    # ones (comma-separated) still verify, so a key rotation does not log anyone out.
    jwt_secret: SecretStr | None = None
    jwt_previous_secrets: SecretStr | None = None
    jwt_issuer: str = "bookshelf"
    jwt_audience: str = "bookshelf-api"
    # Clock difference tolerated between instances when checking a token's exp/iat.
    jwt_leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 5
    access_token_ttl_seconds: Annotated[int, Field(ge=30, le=24 * 3600)] = 15 * 60
    refresh_token_ttl_seconds: Annotated[int, Field(ge=60)] = 30 * 24 * 3600
    # Argon2id cost (pwdlib/argon2-cffi defaults); lower only for tests.
    password_hash_time_cost: Annotated[int, Field(ge=1, le=20)] = 3
    password_hash_memory_kib: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 64 * 1024
    # Hashes running at once per worker process: each holds password_hash_memory_kib, so a
    # worker peaks at its base size + concurrency x memory (the memory budget in docs/deploying.md).
    password_hash_concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    # How long a sign-in waits for a hashing slot before a fast 503 with Retry-After.
    password_hash_wait_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0

    # --- Operating (see docs/operating.md) ---
    # JSON log lines; unset means JSON in production and readable lines elsewhere.
    json_logs: bool | None = None
    # Where Prometheus scrapes; empty disables the endpoint. Keep it off the public ingress.
    metrics_path: str = "/metrics"
    # Redis for state shared by all instances (rate-limit counters). Unset: in-process memory.
    # Secret, like the database URL: it may carry a password. redis+cluster://host:port[,…]
    # names a Redis Cluster's startup nodes.
    redis_url: SecretStr | None = None
    # The longest any Redis command (or connection attempt) may take; past it Redis counts as
    # failed for that request (the rate limits' fallback). Redis answers in well under 1 ms.
    redis_timeout_ms: Annotated[int, Field(ge=1, le=10_000)] = 100
    rate_limit_enabled: bool = True
    # Production refuses BOOKSHELF_RATE_LIMIT_ENABLED=false unless this says it is meant.
    rate_limit_disabled_acknowledged: bool = False
    # limits' notation: "600/minute", "10/second;1000/hour" ...
    rate_limit_default: RateLimit = "600/minute"
    # Stricter, per client address, for sign-in, registration and token refresh.
    rate_limit_auth: RateLimit = "10/minute"
    # Sign-in attempts on one account from addresses that have never signed in to it, from
    # anywhere: how fast one account's password can be guessed from many addresses.
    rate_limit_sign_in_account: RateLimit = "20/hour"
    # Comma-separated proxy addresses/networks whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: str = ""
    # Comma-separated browser origins allowed by CORS (never "*" together with credentials).
    cors_origins: str = ""
    cors_allow_credentials: bool = False
    # Comma-separated Host header values served ("*" = any); others get 400.
    allowed_hosts: str = "*"
    https_redirect: bool = False
    request_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    # Once a response has started, how long it may go on streaming (the bulk export): the
    # request time limit above covers the time until it starts.
    stream_timeout_seconds: Annotated[float, Field(gt=0, le=24 * 60 * 60)] = 600.0
    # PostgreSQL statement_timeout for every query, in milliseconds (0 = none).
    database_statement_timeout_ms: Annotated[int, Field(ge=0)] = 15_000
    # sort=relevance ranks at most this many matches (the first the index yields): ranking a
    # common word's matches stops growing with the catalog. Relevance is exact within them.
    search_rank_candidates: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    # A tighter PostgreSQL statement_timeout for searches (0 = only the one above); a search
    # past it is a 503 problem with Retry-After.
    search_statement_timeout_ms: Annotated[int, Field(ge=0)] = 2000
    # Searches (GET /books?q=) running at once per worker process (0 = half the pool, at least
    # one): a burst of searches cannot take every pooled connection from the other requests.
    search_concurrency: Annotated[int, Field(ge=0, le=1000)] = 0
    # How long a search waits for its turn, holding no connection, before a 503 with Retry-After.
    search_wait_seconds: Annotated[float, Field(gt=0, le=30)] = 1.0
    # asyncpg's prepared-statement cache; turn off behind PgBouncer in transaction mode.
    database_statement_cache: bool = True
    # The fast path (``bookshelf.fastpath``): FastAPI, Starlette and SQLAlchemy internals that
    # make each request cheaper. Off: stock parts only, the escape hatch after an upgrade.
    fast_path: bool = True
    # OpenTelemetry spans for requests and SQL (needs the `otel` extra; OTEL_* configures export).
    tracing: bool = False
    tracing_service_name: str = "bookshelf"
    # Expired sessions, refresh tokens and idempotency records are deleted this often by each
    # instance (0 = never; then run `bookshelf purge` from a scheduler).
    purge_interval_seconds: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] = 3600
    # /health/ready runs its checks at most once per this many seconds, however many probes
    # arrive (0: every probe checks, still one at a time).
    readiness_cache_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    # How long SIGTERM waits for in-flight requests before the process exits.
    graceful_shutdown_seconds: Annotated[int, Field(ge=1, le=600)] = 25
    # A second listener, on the same host, for the probes (/health/*) and the metrics endpoint:
    # they are then served there only (404 on the public port), so the public Service, ingress
    # and load balancer expose neither. Unset: everything on the public port.
    admin_port: Annotated[int | None, Field(ge=1, le=65535)] = None
    # Worker processes of `bookshelf serve` when --workers is not given (about one per core).
    workers: Annotated[int, Field(ge=1, le=64)] = 1

    # --- Accounts (the mail that recovers them: mail_settings.MailSettings) ---
    # Unverified accounts may sign in and read; with this on, they may not write.
    # None: on in production, off in development and test.
    require_verified_email: bool | None = None
    # Production refuses BOOKSHELF_REQUIRE_VERIFIED_EMAIL=false unless this says it is meant.
    email_verification_disabled_acknowledged: bool = False
    verification_token_ttl_seconds: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] = 24 * 3600
    password_reset_token_ttl_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 3600
    # Mails to one target address, whoever asks (no mail-bombing an address).
    rate_limit_mail_target: RateLimit = "5/hour"
    # Created (or promoted) as a verified admin at every start, idempotently.
    first_admin_email: str | None = None
    first_admin_password: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: SecretStr) -> SecretStr:
        return SecretStr(async_database_url(value.get_secret_value()))

    @field_validator("database_replica_urls")
    @classmethod
    def _normalise_replica_urls(cls, value: SecretStr) -> SecretStr:
        urls = [async_database_url(url) for url in _split(value.get_secret_value())]
        if any(url.startswith("sqlite") for url in urls):
            raise ValueError("replicas are PostgreSQL URLs (SQLite has none)")
        return SecretStr(",".join(urls))

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_redis_url(value.get_secret_value())
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _cors_never_wildcard_with_credentials(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origin_list:
            raise ValueError(
                "BOOKSHELF_CORS_ORIGINS cannot be * when BOOKSHELF_CORS_ALLOW_CREDENTIALS is "
                "true; list the origins"
            )
        return self

    @property
    def redis_timeout_seconds(self) -> float:
        return self.redis_timeout_ms / 1000

    @property
    def cors_origin_list(self) -> list[str]:
        return _split(self.cors_origins)

    @property
    def allowed_host_list(self) -> list[str]:
        return _split(self.allowed_hosts) or ["*"]

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _split(self.trusted_proxies)

    @property
    def use_json_logs(self) -> bool:
        return (
            self.environment is Environment.PRODUCTION if self.json_logs is None else self.json_logs
        )

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        """Production refuses to start on a value that is public or accepts anything."""
        if self.environment is Environment.PRODUCTION:
            check_secrets_and_hosts(self)
        return self

    @model_validator(mode="after")
    def _no_open_door_in_production(self) -> Settings:
        """Production refuses a value that leaks links or passwords, lets clients choose their
        address, or turns a protection off without saying so (``production.open_doors``);
        development and test accept each."""
        if self.environment is not Environment.PRODUCTION:
            return self
        refused = open_doors(self)
        if refused:
            raise ValueError("; ".join(refused))
        return self

    @property
    def jwt_secrets(self) -> list[str]:
        """Signing secret first, then the previous ones still accepted for verification."""
        current = self.jwt_secret.get_secret_value() if self.jwt_secret else DEVELOPMENT_SECRET
        previous = self.jwt_previous_secrets.get_secret_value() if self.jwt_previous_secrets else ""
        return [current, *(s.strip() for s in previous.split(",") if s.strip())]

    @property
    def requires_verified_email(self) -> bool:
        if self.require_verified_email is None:
            return self.environment is Environment.PRODUCTION
        return self.require_verified_email

    @property
    def runs_inprocess_worker(self) -> bool:
        return self.is_sqlite if self.inprocess_worker is None else self.inprocess_worker

    @model_validator(mode="after")
    def _first_admin_complete(self) -> Settings:
        if (self.first_admin_email is None) != (self.first_admin_password is None):
            raise ValueError(
                "BOOKSHELF_FIRST_ADMIN_EMAIL and BOOKSHELF_FIRST_ADMIN_PASSWORD go together"
            )
        return self

    @property
    def search_slots(self) -> int:
        """Searches running at once per worker: the setting, or half the pool (at least one)."""
        return self.search_concurrency or max(1, self.database_pool_size // 2)

    @property
    def replica_url_list(self) -> list[str]:
        """The replicas' URLs (normalised as ``database_url`` is, when the settings loaded)."""
        return _split(self.database_replica_urls.get_secret_value())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ConfigurationError(Exception):
    """Raised when the environment holds an invalid setting; its message is one line."""


def describe_settings_error(error: ValidationError) -> str:
    """One line per bad setting, naming its environment variable, with no traceback."""
    problems = []
    for item in error.errors():
        # pydantic prefixes the message of a ValueError raised by a validator: noise here.
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["loc"]:
            name = "BOOKSHELF_" + "_".join(str(part) for part in item["loc"]).upper()
            problems.append(f"{name}: {message}")
        else:  # a rule across settings: its message names the variables
            problems.append(message)
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
