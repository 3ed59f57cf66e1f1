"""``Idempotent``: how a route makes its ``POST`` safe to retry with an ``Idempotency-Key``.

A route declares ``idempotency: Idempotent`` and uses it twice::

    if (replay := await idempotency.claim(payload)) is not None:
        return replay  # the first response to this key and body, marked Idempotent-Replayed
    ...  # the write
    return await idempotency.record(response)

Without the header both calls do nothing. ``claim`` takes the validated body because the key's
fingerprint is of the body as the route reads it (FastAPI parses the body only after the
dependencies have run); it runs in the route, so a request that fails validation or
authorisation never claims its key.

Transactions: this module is the one place that commits outside the request's transaction.
The claim commits at once, in a short transaction of its own, so that a concurrent retry with the
same key sees it in flight and gets 409 instead of writing a second row. The route's write and
``record`` then share the request's transaction (``ConnectionDep``), so the write and its
replayable response commit together or not at all: the dependency's exit commits them, before
the response is sent. If the request fails after the claim, or that commit does, the exit rolls
the request's work back and deletes the claim in a second short transaction (the request's own
rollback would not undo a committed claim), so a retry runs afresh. Both use the request's
connection: a second one could deadlock with its write lock on SQLite.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel

from bookshelf.api import API_PREFIX, JSON_MEDIA_TYPE
from bookshelf.auth.dependencies import CurrentUser
from bookshelf.auth.sessions import Principal
from bookshelf.db.connections import ConnectionDep
from bookshelf.db.database import Connection
from bookshelf.dependencies import Exit, SettingsDep, with_exit
from bookshelf.idempotency import service

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Makes a retry safe: the same key and body replay the first response.",
    ),
]

# Replay metadata is re-derived from the stored body, so it is not stored.
_UNSTORED_HEADERS = frozenset({"content-length", "content-type"})


class Idempotency:
    """One request's Idempotency-Key: claim it, then record the response to replay."""

    def __init__(
        self,
        connection: Connection,
        key: str | None,
        scope: str,
        policy: service.IdempotencyPolicy,
    ) -> None:
        self._connection = connection
        self._key = key
        self._scope = scope
        self._policy = policy
        self._claimed = False
        self._recorded = False

    async def claim(self, payload: BaseModel) -> Response | None:
        """Claim the key for this body (committed at once), or return the response to replay.

        Raises ``IdempotencyKeyReused`` (422) if the key came with another body, and
        ``IdempotencyKeyInFlight`` (409) while the first request with it is still running.
        """
        if self._key is None:
            return None
        request_fingerprint = service.fingerprint(payload.model_dump_json().encode())
        stored = await service.claim(
            self._connection, self._scope, self._key, request_fingerprint, self._policy
        )
        if stored is not None:
            return Response(
                content=stored.body,
                status_code=stored.status_code,
                headers={**stored.headers, "Idempotent-Replayed": "true"},
                media_type=JSON_MEDIA_TYPE,
            )
        await self._connection.commit()
        self._claimed = True
        return None

    async def record(self, response: Response) -> Response:
        """Store ``response`` for replay, in the request's transaction; return it unchanged."""
        if self._key is not None and self._claimed:
            headers = {
                name: value
                for name, value in response.headers.items()
                if name not in _UNSTORED_HEADERS
            }
            await service.complete(
                self._connection,
                self._scope,
                self._key,
                service.StoredResponse(response.status_code, bytes(response.body), headers),
            )
            self._recorded = True
        return response

    async def release(self) -> None:
        """Roll back the request's work and forget the claim (committed), if there is one."""
        if self._key is None or not self._claimed:
            return
        await self._connection.rollback()
        await service.release(self._connection, self._scope, self._key)
        await self._connection.commit()
        self._claimed = False

    @property
    def claimed(self) -> bool:
        return self._claimed

    @property
    def recorded(self) -> bool:
        return self._recorded

    async def commit(self) -> None:
        """Commit the request's work with its recorded response (see ``_settle``)."""
        await self._connection.commit()


def _scope(request: Request, principal: Principal) -> str:
    """Keys are per operation, resource and user: two users' keys never collide, and neither do
    one user's keys for the reviews of two books."""
    path_format: str = request.scope["route"].path_format
    path = path_format.removeprefix(API_PREFIX).format(**request.path_params)
    return f"{request.method} {path} by {principal.id}"


@with_exit
async def get_idempotency(
    request: Request,
    principal: CurrentUser,
    connection: ConnectionDep,
    settings: SettingsDep,
    key: IdempotencyKey = None,
) -> tuple[Idempotency, Exit]:
    """The request's ``Idempotency``, settled when the handler is done (``_settle``); its exit
    runs before the connection's (it was taken after the connection, so it runs first)."""
    policy = service.IdempotencyPolicy(
        ttl_seconds=settings.idempotency_ttl_seconds,
        lock_seconds=settings.idempotency_lock_seconds,
    )
    idempotency = Idempotency(connection, key, _scope(request, principal), policy)
    return idempotency, _settle(idempotency)


def _settle(idempotency: Idempotency) -> Exit:
    """The exit of a request's ``Idempotency``. A request that claimed its key and recorded its
    response commits here, just before the connection's exit would: if that COMMIT fails, the
    claim (committed on its own) is released too, so a retry runs afresh instead of meeting a
    409 for a request that is no longer running. A request that failed releases its claim."""

    async def settle(exc_type: type[BaseException] | None, *_exc: object) -> None:
        if not idempotency.claimed:
            return  # the common case: no key, or a replay
        if exc_type is None and idempotency.recorded:
            try:
                await idempotency.commit()
            except BaseException:
                await _release(idempotency)
                raise
            return
        await _release(idempotency)
        if exc_type is None:
            raise RuntimeError("the route claimed an Idempotency-Key but recorded no response")

    return settle


async def _release(idempotency: Idempotency) -> None:
    # Also on cancellation (a timed-out or abandoned request): shielded, so it finishes.
    with anyio.CancelScope(shield=True):
        await idempotency.release()


Idempotent = Annotated[Idempotency, Depends(get_idempotency, scope="function")]
