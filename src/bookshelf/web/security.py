"""The browser's session and forms: the session cookie, the CSRF token of every form, and the
``Origin`` check of every post.

**The session** is a sign-in session of ``auth.sessions`` like any API client's (a row of
``auth_sessions``, made by ``auth.service.start_session``): signing out, "sign out
everywhere", a password change or reset and a deactivation end it exactly as they end the
API's, since every request loads it live (``auth.service.load_principal``). The cookie holds a
token signed like the API's access tokens but for another audience, so it is no bearer token
for the API (nor an access token a cookie), and lasting as long as its session. The cookie is
``HttpOnly`` and ``SameSite=Lax``; outside development it is ``Secure`` and named with the
``__Host-`` prefix (no ``Domain``, path ``/``: no other host or path can set or read it).

**Forms** carry a CSRF token: an HMAC, keyed from the signing secret, of a random nonce kept
in a cookie of its own and of the session (none before sign-in). A token is good for as long as
both last: signing in or out changes both, so a form shown before is refused afterwards
(``FormRefused``), as is one with no token or a wrong one. The token is the same on every page
of a visit, so pages stay cacheable (``ETag``). Posts whose ``Origin`` is another site's are
refused before the token is read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from starlette.responses import Response

from bookshelf.auth.tokens import AccessClaims, TokenSigner
from bookshelf.config import Environment, Settings
from bookshelf.db.types import utc_now

# The audience of the session cookie's token: the API's signer refuses it as an access token.
SESSION_AUDIENCE = "bookshelf-web"
CSRF_FIELD = "csrf_token"
# A nonce is 32 random bytes, base64url without padding.
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"bookshelf web forms", hashlib.sha256).digest()


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL (the public URL setting)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


@dataclass(frozen=True)
class Cookies:
    """The names and attributes of the web app's two cookies."""

    session: str
    csrf: str
    secure: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Cookies:
        # Development serves plain http on 127.0.0.1, where a Secure cookie may not be set by
        # every browser; everywhere else the service is reached over HTTPS.
        secure = settings.environment is not Environment.DEVELOPMENT
        prefix = "__Host-" if secure else ""
        return cls(f"{prefix}bookshelf_session", f"{prefix}bookshelf_csrf", secure)

    def set(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def delete(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")


class SessionTokens:
    """The session cookie's token: the session and its user, signed, lasting as the session."""

    def __init__(self, settings: Settings) -> None:
        self.signer = TokenSigner(
            settings.jwt_secrets,
            issuer=settings.jwt_issuer,
            audience=SESSION_AUDIENCE,
            leeway_seconds=settings.jwt_leeway_seconds,
        )
        self.lifetime = timedelta(seconds=settings.refresh_token_ttl_seconds)

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        return self.signer.issue(
            user_id=user_id, session_id=session_id, now=utc_now(), ttl=self.lifetime
        )

    def read(self, token: str) -> AccessClaims:
        """The claims of a cookie's token; ``InvalidToken`` when it cannot be trusted."""
        return self.signer.verify(token)


class FormTokens:
    """CSRF tokens: HMACs of the visit's nonce and the session, keyed from the signing secrets
    (the first signs; every accepted one verifies, so a key rotation spoils no open form)."""

    def __init__(self, secrets_in_order: Sequence[str]) -> None:
        self._keys = [_key(secret) for secret in secrets_in_order]

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def usable_nonce(cookie: str | None) -> str | None:
        return cookie if cookie is not None and _NONCE.fullmatch(cookie) else None

    @staticmethod
    def _message(nonce: str, session_id: uuid.UUID | None) -> bytes:
        return nonce.encode() + b"|" + (session_id.bytes if session_id is not None else b"-")

    def token(self, nonce: str, session_id: uuid.UUID | None) -> str:
        digest = hmac.new(self._keys[0], self._message(nonce, session_id), hashlib.sha256)
        return urlsafe_b64encode(digest.digest()).decode().rstrip("=")

    def check(self, sent: str | None, nonce: str | None, session_id: uuid.UUID | None) -> bool:
        """Whether ``sent`` is the token of this nonce and session (under any accepted key)."""
        if not sent or nonce is None:
            return False
        message = self._message(nonce, session_id)
        return any(
            hmac.compare_digest(
                sent,
                urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest())
                .decode()
                .rstrip("="),
            )
            for key in self._keys
        )


class Origins:
    """Where a form may be posted from: the public URL's origin, or the origin the request
    itself names (its scheme and ``Host``, already parsed by the request pipeline)."""

    def __init__(self, public_url: str) -> None:
        self.public = _origin_of(public_url)

    def allows(self, origin: str | None, sec_fetch_site: str | None, own: str) -> bool:
        """No ``Origin`` (an old browser, a script): the token decides alone; a browser that
        says the post is cross-site, or names another origin (``null`` included), is
        refused."""
        if sec_fetch_site is not None and sec_fetch_site.lower() == "cross-site":
            return False
        if origin is None:
            return True
        origin = origin.lower()
        return origin in (self.public, own.lower())
