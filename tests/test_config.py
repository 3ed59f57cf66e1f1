"""Settings from the environment: defaults, database URL normalisation, one-line errors, secrets
that never print, and every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bookshelf.config import ConfigurationError, Settings, load_settings
from bookshelf.production import DEVELOPMENT_SECRET

pytestmark = pytest.mark.usefixtures("clean_environment")

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_use_embedded_sqlite_and_auto_migrate() -> None:
    settings = Settings()
    assert settings.database_url.get_secret_value() == "sqlite+aiosqlite:///./bookshelf.db"
    assert settings.is_sqlite is True
    assert settings.auto_migrate is None
    assert settings.should_auto_migrate is True
    assert settings.environment == "development"
    assert settings.database_pool_size == 10
    assert settings.database_max_overflow == 0
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 1024 * 1024


def test_postgres_does_not_auto_migrate_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", "postgresql://app@db.internal:5432/books")
    settings = Settings()
    assert settings.is_sqlite is False
    assert settings.should_auto_migrate is False


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False)])
def test_postgres_auto_migrate_follows_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", "postgresql://app@db.internal:5432/books")
    monkeypatch.setenv("BOOKSHELF_AUTO_MIGRATE", value)
    assert Settings().should_auto_migrate is expected


def test_sqlite_auto_migrate_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKSHELF_AUTO_MIGRATE", "false")
    assert Settings().should_auto_migrate is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://app:secret@db.internal:5432/books",
            "postgresql+asyncpg://app:secret@db.internal:5432/books",
        ),
        (
            "postgres://app:secret@db.internal/books",
            "postgresql+asyncpg://app:secret@db.internal/books",
        ),
        (
            "postgresql+asyncpg://app@db.internal/books",
            "postgresql+asyncpg://app@db.internal/books",
        ),
        ("sqlite:///./catalog.db", "sqlite+aiosqlite:///./catalog.db"),
        (
            "sqlite:////var/lib/bookshelf/catalog.db",
            "sqlite+aiosqlite:////var/lib/bookshelf/catalog.db",
        ),
        ("sqlite+aiosqlite:///catalog.db", "sqlite+aiosqlite:///catalog.db"),
    ],
)
def test_database_url_is_rewritten_to_the_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", given)
    assert Settings().database_url.get_secret_value() == expected


def test_database_url_keeps_password_with_special_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", "postgres://app:p%40ss%2Fw0rd@db.internal/books")
    url = make_url(Settings().database_url.get_secret_value())
    assert url.drivername == "postgresql+asyncpg"
    assert url.password == "p@ss/w0rd"
    assert url.database == "books"


def test_database_url_given_directly_is_normalised_too() -> None:
    settings = Settings(database_url="postgres://app@db.internal/books")
    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://app@db.internal/books"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://app@db.internal/books",
        "mysql+aiomysql://app:db-pass-7f3a9c@db/books",
        "oracle://x@y/z",
    ],
)
def test_unsupported_database_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", url)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("invalid configuration: BOOKSHELF_DATABASE_URL: ")
    assert "unsupported database" in message
    assert "\n" not in message
    assert "db-pass-7f3a9c" not in message


def test_text_that_is_not_a_url_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", "nonsense")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value).startswith("invalid configuration: BOOKSHELF_DATABASE_URL: ")
    assert "not a database URL" in str(raised.value)


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKSHELF_LOG_LEVEL", "debug")
    assert Settings().log_level == "DEBUG"


def test_unknown_log_level_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKSHELF_LOG_LEVEL", "loud")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value).startswith("invalid configuration: BOOKSHELF_LOG_LEVEL: ")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOOKSHELF_DATABASE_POOL_SIZE", "abc"),
        ("BOOKSHELF_DATABASE_POOL_SIZE", "0"),
        ("BOOKSHELF_DATABASE_MAX_OVERFLOW", "-1"),
        ("BOOKSHELF_MAX_BODY_BYTES", "10"),
        ("BOOKSHELF_IDEMPOTENCY_TTL_SECONDS", "5"),
        ("BOOKSHELF_ENVIRONMENT", "staging"),
        ("BOOKSHELF_AUTO_MIGRATE", "perhaps"),
        ("BOOKSHELF_FAST_PATH", "maybe"),
        ("BOOKSHELF_REDIS_TIMEOUT_MS", "0"),
        ("BOOKSHELF_REDIS_TIMEOUT_MS", "20000"),
        ("BOOKSHELF_REDIS_URL", "http://cache.internal:6379"),
        ("BOOKSHELF_REDIS_URL", "cache.internal:6379"),
        ("BOOKSHELF_REDIS_URL", "redis+cluster://node-a,node-b:6379"),
        ("BOOKSHELF_REDIS_URL", "redis+cluster://node-a:6379/0"),
    ],
)
def test_out_of_range_values_are_errors_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"invalid configuration: {name}: ")
    assert "\n" not in str(raised.value)


def test_redis_commands_wait_100_ms_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().redis_timeout_seconds == 0.1
    monkeypatch.setenv("BOOKSHELF_REDIS_TIMEOUT_MS", "250")
    assert load_settings().redis_timeout_seconds == 0.25


@pytest.mark.parametrize(
    "url",
    [
        "redis://:secret@cache.internal:6379/0",
        "rediss://cache.internal",
        "unix:///run/redis.sock",
        "redis+unix:///run/redis.sock",
        "redis+cluster://node-a:6379,node-b:6379",
        "redis+cluster://user:p%40ss@10.0.0.1:7000,[2001:db8::1]:7001",
    ],
)
def test_redis_urls_of_every_kind_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("BOOKSHELF_REDIS_URL", url)
    redis_url = load_settings().redis_url
    assert redis_url is not None
    assert redis_url.get_secret_value() == url


def test_every_bad_variable_is_named_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", "nonsense")
    monkeypatch.setenv("BOOKSHELF_DATABASE_POOL_SIZE", "abc")
    monkeypatch.setenv("BOOKSHELF_LOG_LEVEL", "loud")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    for name in ("BOOKSHELF_DATABASE_URL", "BOOKSHELF_DATABASE_POOL_SIZE", "BOOKSHELF_LOG_LEVEL"):
        assert f"{name}: " in message


def test_dotenv_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "BOOKSHELF_LOG_LEVEL=warning\nBOOKSHELF_DATABASE_URL=postgres://app@db.internal/books\n"
    )
    settings = Settings()
    assert settings.log_level == "WARNING"
    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://app@db.internal/books"


def test_environment_variable_overrides_dotenv_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("BOOKSHELF_LOG_LEVEL=warning\n")
    monkeypatch.setenv("BOOKSHELF_LOG_LEVEL", "error")
    assert Settings().log_level == "ERROR"


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "DEBUG"  # type: ignore[misc]


GOOD_SECRET = "k" * 16 + "production-secret-of-48-chars-xx"
SMTP_PASSWORD = "smtp-pass-5e1d0c"


def _production(**overrides: str) -> dict[str, str]:
    return {
        "environment": "production",
        "jwt_secret": GOOD_SECRET,
        "allowed_hosts": "books.example.org",
        "public_url": "https://books.example.org",
        "smtp_url": f"smtp://bookshelf:{SMTP_PASSWORD}@mail.example.org:587?starttls=require",
        **overrides,
    }


def test_production_with_safe_values_starts() -> None:
    settings = Settings(**_production())  # type: ignore[arg-type]
    assert settings.allowed_host_list == ["books.example.org"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"smtp_url": f"smtps://bookshelf:{SMTP_PASSWORD}@mail.example.org"},
        {"smtp_url": "smtp://127.0.0.1:25"},  # a relay on this machine: nothing crosses a network
        {"smtp_url": "smtp://localhost:1025"},
        {"smtp_url": "smtp://[::1]:25"},
        {"smtp_url": "", "mail_to_log_unsafe": "true"},
        {"public_url": "https://books.example.org:8443/catalog/"},
        {"trusted_proxies": "10.0.0.0/8, 192.168.1.7"},
        {"rate_limit_enabled": "false", "rate_limit_disabled_acknowledged": "true"},
        {
            "require_verified_email": "false",
            "email_verification_disabled_acknowledged": "true",
        },
    ],
)
def test_production_accepts_the_safe_form_of_each_value(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str]
) -> None:
    for name, value in _production(**overrides).items():
        monkeypatch.setenv(f"BOOKSHELF_{name.upper()}", value)
    assert load_settings().environment == "production"


# Each refused in production, accepted in development and test.
UNSAFE_IN_PRODUCTION = [
    ({"smtp_url": ""}, "BOOKSHELF_SMTP_URL"),
    ({"smtp_url": f"smtp://bookshelf:{SMTP_PASSWORD}@mail.example.org:587"}, "BOOKSHELF_SMTP_URL"),
    ({"smtp_url": "smtp://mail.example.org?starttls=if-offered"}, "BOOKSHELF_SMTP_URL"),
    ({"smtp_url": "smtp://10.1.2.3:25"}, "BOOKSHELF_SMTP_URL"),
    ({"public_url": "http://books.example.org"}, "BOOKSHELF_PUBLIC_URL"),
    ({"public_url": "https://localhost:8443"}, "BOOKSHELF_PUBLIC_URL"),
    ({"public_url": "https://127.0.0.2"}, "BOOKSHELF_PUBLIC_URL"),
    ({"public_url": "https://[::1]:8000"}, "BOOKSHELF_PUBLIC_URL"),
    ({"public_url": "books.example.org"}, "BOOKSHELF_PUBLIC_URL"),
    ({"trusted_proxies": "*"}, "BOOKSHELF_TRUSTED_PROXIES"),
    ({"trusted_proxies": "10.0.0.1, *"}, "BOOKSHELF_TRUSTED_PROXIES"),
    ({"trusted_proxies": "0.0.0.0/0"}, "BOOKSHELF_TRUSTED_PROXIES"),
    ({"trusted_proxies": "::/0"}, "BOOKSHELF_TRUSTED_PROXIES"),
    ({"rate_limit_enabled": "false"}, "BOOKSHELF_RATE_LIMIT_ENABLED"),
    ({"require_verified_email": "false"}, "BOOKSHELF_REQUIRE_VERIFIED_EMAIL"),
]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"jwt_secret": DEVELOPMENT_SECRET}, "BOOKSHELF_JWT_SECRET"),
        (
            {"jwt_secret": "CHANGE-ME-to-48-random-characters-from-a-secret-generator"},
            "BOOKSHELF_JWT_SECRET",
        ),
        ({"jwt_secret": "please-change-me-" + "x" * 32}, "BOOKSHELF_JWT_SECRET"),
        ({"jwt_secret": "too-short"}, "BOOKSHELF_JWT_SECRET"),
        ({"jwt_previous_secrets": "short-old-secret"}, "BOOKSHELF_JWT_PREVIOUS_SECRETS"),
        (
            {"jwt_previous_secrets": f"{GOOD_SECRET}-old,{DEVELOPMENT_SECRET}"},
            "BOOKSHELF_JWT_PREVIOUS_SECRETS",
        ),
        ({"allowed_hosts": "*"}, "BOOKSHELF_ALLOWED_HOSTS"),
        ({"allowed_hosts": "books.example.org, *"}, "BOOKSHELF_ALLOWED_HOSTS"),
        ({"allowed_hosts": ""}, "BOOKSHELF_ALLOWED_HOSTS"),
        *UNSAFE_IN_PRODUCTION,
    ],
)
def test_production_refuses_unsafe_values_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str], named: str
) -> None:
    for name, value in _production(**overrides).items():
        monkeypatch.setenv(f"BOOKSHELF_{name.upper()}", value)
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert named in str(refused.value)
    assert "\n" not in str(refused.value)
    for secret in (DEVELOPMENT_SECRET, GOOD_SECRET, SMTP_PASSWORD):
        assert secret not in str(refused.value)


@pytest.mark.parametrize("environment", ["development", "test"])
@pytest.mark.parametrize(("overrides", "named"), UNSAFE_IN_PRODUCTION)
def test_outside_production_each_value_production_refuses_is_accepted(
    monkeypatch: pytest.MonkeyPatch, environment: str, overrides: dict[str, str], named: str
) -> None:
    for name, value in overrides.items():
        monkeypatch.setenv(f"BOOKSHELF_{name.upper()}", value)
    monkeypatch.setenv("BOOKSHELF_ENVIRONMENT", environment)
    assert load_settings().environment == environment


def test_production_names_every_unsafe_value_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    unsafe = {"smtp_url": "", "public_url": "http://localhost:8000", "trusted_proxies": "*"}
    for name, value in _production(**unsafe).items():
        monkeypatch.setenv(f"BOOKSHELF_{name.upper()}", value)
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    message = str(refused.value)
    assert "\n" not in message
    for named in ("BOOKSHELF_SMTP_URL", "BOOKSHELF_PUBLIC_URL", "BOOKSHELF_TRUSTED_PROXIES"):
        assert named in message
    assert "BOOKSHELF_MAIL_TO_LOG_UNSAFE" in message  # the way out, named too


def test_the_log_transport_and_an_smtp_url_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="BOOKSHELF_MAIL_TO_LOG_UNSAFE and BOOKSHELF_SMTP_URL"):
        Settings(mail_to_log_unsafe=True, smtp_url="smtp://127.0.0.1:25")  # type: ignore[arg-type]


@pytest.mark.parametrize(("lease", "send"), [("60", "60"), ("60", "90")])
def test_a_send_budget_that_does_not_end_before_the_lease_is_refused(
    monkeypatch: pytest.MonkeyPatch, lease: str, send: str
) -> None:
    monkeypatch.setenv("BOOKSHELF_MAIL_LEASE_SECONDS", lease)
    monkeypatch.setenv("BOOKSHELF_SMTP_SEND_TIMEOUT_SECONDS", send)
    with pytest.raises(ConfigurationError, match="BOOKSHELF_SMTP_SEND_TIMEOUT_SECONDS"):
        load_settings()


@pytest.mark.parametrize("environment", ["development", "test"])
def test_outside_production_any_host_and_the_development_secret_are_fine(
    environment: str,
) -> None:
    settings = Settings(environment=environment, allowed_hosts="*")  # type: ignore[arg-type]
    assert settings.jwt_secrets[0] == DEVELOPMENT_SECRET


def test_connection_urls_never_print_their_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    database_password, redis_password = "db-pass-7f3a9c", "redis-pass-41be0d"
    database_url = f"postgresql://app:{database_password}@db.internal:5432/books"
    redis_url = f"redis://:{redis_password}@cache.internal:6379/0"
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", database_url)
    monkeypatch.setenv("BOOKSHELF_REDIS_URL", redis_url)
    settings = Settings()
    assert settings.database_url.get_secret_value() == database_url.replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == redis_url
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert database_password not in shown
        assert redis_password not in shown


def _variables(text: str) -> set[str]:
    return set(re.findall(r"BOOKSHELF_[A-Z0-9_]*[A-Z0-9]", text))


def test_every_setting_is_in_the_configuration_table_and_the_env_example() -> None:
    """A new setting cannot be forgotten in the documentation, nor a removed one linger."""
    settings = {f"BOOKSHELF_{name.upper()}" for name in Settings.model_fields}
    document = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    configuration = document.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    # The first cell of each row of the table names the variable(s) it documents.
    rows = [line for line in configuration.splitlines() if line.startswith("| `")]
    in_table = _variables("\n".join(row.split("|")[1] for row in rows))
    # Each appears as an assignment, commented out when it has no default worth copying.
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    in_example = set(re.findall(r"^#? ?(BOOKSHELF_[A-Z0-9_]+)=", example, re.MULTILINE))
    assert sorted(settings - in_table) == [], "missing from docs/configuration.md's table"
    assert sorted(in_table - settings) == [], "in docs/configuration.md's table but not a setting"
    assert sorted(settings - in_example) == [], "missing from .env.example"
    assert sorted(in_example - settings) == [], "in .env.example but not a setting"


@pytest.mark.parametrize(
    ("pool_size", "concurrency", "slots"), [(10, 0, 5), (3, 0, 1), (1, 0, 1), (10, 7, 7)]
)
def test_searches_at_once_default_to_half_the_pool(
    pool_size: int, concurrency: int, slots: int
) -> None:
    settings = Settings(database_pool_size=pool_size, search_concurrency=concurrency)

    assert settings.search_slots == slots
