"""What production refuses besides public secrets and any Host: a value that would leak the
mails' links or the relay's password, let a client choose its own address, or switch a
protection off without saying so. ``Settings`` checks them at start; development and test
accept each, so a laptop needs no TLS, relay or proxy."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bookshelf.addresses import is_local_host, is_public_https_url, parse_smtp_url, trusts_everyone

if TYPE_CHECKING:  # Settings calls this module: a name for the type only, no import cycle
    from bookshelf.config import Settings

# Used only when BOOKSHELF_JWT_SECRET is unset, which production refuses.
DEVELOPMENT_SECRET = "bookshelf-development-secret-never-use-in-production"  # noqa: S105
MIN_PRODUCTION_SECRET_LENGTH = 32
# Secrets anyone can read (this file, the example manifests): refused in production.
_PUBLIC_SECRETS = frozenset(
    {DEVELOPMENT_SECRET, "CHANGE-ME-to-48-random-characters-from-a-secret-generator"}
)
_PLACEHOLDER = re.compile(r"change[-_ ]?me|replace[-_ ]?me", re.IGNORECASE)


def check_secrets_and_hosts(settings: Settings) -> None:
    """Production refuses to start on a secret that is short or public, or on any Host."""
    if settings.jwt_secret is None:
        raise ValueError("BOOKSHELF_JWT_SECRET is required in production")
    _check_secret("BOOKSHELF_JWT_SECRET", settings.jwt_secret.get_secret_value())
    for previous in settings.jwt_secrets[1:]:
        _check_secret("BOOKSHELF_JWT_PREVIOUS_SECRETS", previous)
    if "*" in settings.allowed_host_list:
        raise ValueError(
            "BOOKSHELF_ALLOWED_HOSTS must list the host names served in production (not *): "
            "a forged Host header must not be answered"
        )


def _check_secret(name: str, secret: str) -> None:
    if len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
        raise ValueError(
            f"{name} must be at least {MIN_PRODUCTION_SECRET_LENGTH} characters in production "
            "(each of them)"
        )
    if secret in _PUBLIC_SECRETS or _PLACEHOLDER.search(secret):
        raise ValueError(
            f"{name} is the development secret or an example from the documentation: "
            "generate a random one"
        )


def open_doors(settings: Settings) -> list[str]:
    """One sentence per value production refuses, each naming its variable."""
    refused: list[str] = []
    if settings.smtp_url is None and not settings.mail_to_log_unsafe:
        refused.append(
            "BOOKSHELF_SMTP_URL is required in production (or, to write mails to the log "
            "with their links' tokens masked, BOOKSHELF_MAIL_TO_LOG_UNSAFE=true)"
        )
    if settings.smtp_url is not None:
        target = parse_smtp_url(settings.smtp_url.get_secret_value())
        if not (target.implicit_tls or target.require_starttls or is_local_host(target.hostname)):
            refused.append(
                "BOOKSHELF_SMTP_URL to another host needs smtps:// or ?starttls=require in "
                "production: the password and the mails must not cross the network in clear"
            )
    if not is_public_https_url(settings.public_url):
        refused.append(
            "BOOKSHELF_PUBLIC_URL must be the site's https:// address in production (the "
            "links in mails point there), not http:// nor this machine"
        )
    if trusts_everyone(settings.trusted_proxy_list):
        refused.append(
            "BOOKSHELF_TRUSTED_PROXIES must list the proxies in production, not every "
            "address (any client could then choose its own, escaping every per-address limit)"
        )
    if not settings.rate_limit_enabled and not settings.rate_limit_disabled_acknowledged:
        refused.append(
            "BOOKSHELF_RATE_LIMIT_ENABLED=false in production needs "
            "BOOKSHELF_RATE_LIMIT_DISABLED_ACKNOWLEDGED=true (nothing then bounds password "
            "guessing, nor the mails sent to one address)"
        )
    if settings.require_verified_email is False and not (
        settings.email_verification_disabled_acknowledged
    ):
        refused.append(
            "BOOKSHELF_REQUIRE_VERIFIED_EMAIL=false in production needs "
            "BOOKSHELF_EMAIL_VERIFICATION_DISABLED_ACKNOWLEDGED=true (accounts on addresses "
            "nobody confirmed may then write)"
        )
    return refused
