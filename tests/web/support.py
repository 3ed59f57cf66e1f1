"""A browser for the HTTP-level tests of the web app: an in-process client over HTTPS (so the
``Secure`` cookies come back, as a browser's would), a cookie jar, and the CSRF token of the
last page it was shown, which its posts send as the page's form would (with the page's
``Origin``)."""

from __future__ import annotations

import re
from types import EllipsisType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.mail.models import mail_outbox
from tests.factories import Account
from tests.ops.support import LOCALHOST

ORIGIN = "https://testserver"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_HEADING = re.compile(r"<h1[^>]*>(.*?)</h1>", re.DOTALL)


class Browser:
    def __init__(self, app: FastAPI, *, address: str = LOCALHOST) -> None:
        transport = httpx.ASGITransport(
            app=app, raise_app_exceptions=False, client=(address, 50123)
        )
        self.app = app
        self.client = httpx.AsyncClient(transport=transport, base_url=ORIGIN)
        self.token: str | None = None

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()

    def _remember(self, response: httpx.Response) -> httpx.Response:
        found = _TOKEN.search(response.text)
        if found:
            self.token = found.group(1)
        return response

    async def get(self, path: str, **options: Any) -> httpx.Response:
        return self._remember(await self.client.get(path, **options))

    async def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        token: str | EllipsisType | None = ...,
        origin: str | None = ORIGIN,
        headers: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Post a form with the last page's CSRF token (``token=None``: no token; a string:
        that token) and ``Origin`` (None: no Origin header)."""
        fields = dict(data or {})
        sent = self.token if isinstance(token, EllipsisType) else token
        if sent is not None:
            fields["csrf_token"] = sent
        sent_headers = {**({"Origin": origin} if origin else {}), **(headers or {})}
        response = await self.client.post(path, data=fields, files=files, headers=sent_headers)
        return self._remember(response)

    async def submit(self, page: str, action: str, data: dict[str, str]) -> httpx.Response:
        """Open ``page`` and post its form to ``action``, as a person would."""
        shown = await self.get(page)
        assert shown.status_code == 200, shown.text
        return await self.post(action, data)

    def sign_in_as(self, account: Account) -> None:
        """The session cookie of ``account``'s signed-in session (as if signed in here)."""
        site = self.app.state.site
        session_id = self.app.state.auth.signer.verify(account.access_token).session_id
        token = site.sessions.issue(account.id, session_id)
        self.set_session_cookie(token)

    def set_session_cookie(self, token: str) -> None:
        """As the server's Set-Cookie would store it (a host without a dot is ``.local`` to
        the cookie jar), so the server's own Set-Cookie replaces or deletes it."""
        name = self.app.state.site.cookies.session
        self.client.cookies.set(name, token, domain="testserver.local", path="/")

    def cookie(self, name: str) -> str | None:
        return self.client.cookies.get(name)


def heading(response: httpx.Response) -> str:
    found = _HEADING.search(response.text)
    assert found, response.text
    return found.group(1).strip()


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each ``Set-Cookie`` of a response, by cookie name (the whole header line)."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


async def mailed_token(engine: AsyncEngine, recipient: str, page: str) -> str:
    """The token of the newest link to ``page`` in the outbox's mails to ``recipient``."""
    async with engine.connect() as connection:
        rows = list(
            await connection.execute(
                select(mail_outbox.c.body)
                .where(mail_outbox.c.recipient == recipient)
                .order_by(mail_outbox.c.created_at.desc())
            )
        )
    for row in rows:
        for word in row.body.split():
            parts = urlsplit(word)
            if parts.path.endswith("/" + page) and "token" in parse_qs(parts.query):
                return parse_qs(parts.query)["token"][0]
    raise AssertionError(f"no {page} link mailed to {recipient}")
