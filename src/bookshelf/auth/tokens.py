"""Access tokens (JWT, HS256, signed with the current secret and verified against every accepted
one by ``kid``) and opaque refresh tokens (random, stored only as a hash)."""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from bookshelf.auth.exceptions import InvalidToken

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti", "sid")
# How many checked access tokens a process remembers (``TokenSigner.verify``): ~1 KiB each.
CHECKED_TOKENS_KEPT = 1024


def key_id(secret: str) -> str:
    """A public name for a secret (not reversible), so a token says which key signed it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    token_id: str
    expires_at: datetime


class TokenSigner:
    def __init__(
        self,
        secrets_in_order: list[str],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 0,
    ) -> None:
        if not secrets_in_order:
            raise ValueError("at least one signing secret is needed")
        self._signing_secret = secrets_in_order[0]
        self._signing_kid = key_id(secrets_in_order[0])
        self._secrets_by_kid = {key_id(secret): secret for secret in secrets_in_order}
        self.issuer = issuer
        self.audience = audience
        # Instances' clocks differ a little: a token issued by one must not look expired (or
        # issued in the future) to another a second later.
        self.leeway_seconds = leeway_seconds
        self._checked = functools.lru_cache(maxsize=CHECKED_TOKENS_KEPT)(self._check)

    def issue(
        self, *, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime, ttl: timedelta
    ) -> str:
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        return jwt.encode(
            claims, self._signing_secret, algorithm=ALGORITHM, headers={"kid": self._signing_kid}
        )

    def verify(self, token: str) -> AccessClaims:
        """Check signature (pinned algorithm), expiry, issuer, audience and required claims.

        A client sends the same token with every request until it expires, and the full check
        (PyJWT parses the token twice and validates it character by character) was the
        largest part of an authenticated GET (measured: bench/RESULTS.md). So a token that
        passed is remembered (the whole string, signature included: a token with one character
        changed is another token, checked in full), and checked again only for what changes
        with time, its expiry. The secrets do not change while a process runs, a session's
        revocation is checked in the database on every request (``service.load_principal``),
        and a failed check is never remembered. The least recently used token is forgotten
        first. (So the rate limiter and the auth dependency each call this for a request's
        token, and the second call costs a lookup.)"""
        claims = self._checked(token)
        if claims.expires_at.timestamp() + self.leeway_seconds <= datetime.now(UTC).timestamp():
            raise InvalidToken("the access token has expired")
        return claims

    @property
    def remembered_tokens(self) -> int:
        return self._checked.cache_info().currsize

    def _check(self, token: str) -> AccessClaims:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            secret = self._secrets_by_kid.get(kid) if isinstance(kid, str) else None
            if secret is None:
                raise InvalidToken("the token was not signed by a key this service accepts")
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS)},
                leeway=self.leeway_seconds,
            )
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the access token has expired") from None
        except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError):
            raise InvalidToken("the access token is malformed or its signature is wrong") from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # The token is 256 random bits, so a plain SHA-256 is enough (no salt or slow hash needed).
    return hashlib.sha256(token.encode()).hexdigest()
