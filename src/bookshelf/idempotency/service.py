"""The idempotency records of ``POST`` (the ``Idempotency-Key`` header); see
``idempotency.dependencies`` for how a route uses them and where each step commits.

1. ``claim`` records the key as in flight, or returns the stored response to replay.
2. ``complete`` stores the request's response, in the same transaction as its write, so the write
   and its replayable response commit together or not at all.
3. ``release`` forgets the claim of a request that failed, so a retry runs afresh.

A claim whose request died without releasing it is taken over after ``lock_seconds``. Like every
service, these functions never commit or roll back: their caller owns the transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update

from bookshelf.db.database import Connection
from bookshelf.db.exceptions import IntegrityViolation
from bookshelf.db.types import utc_now
from bookshelf.idempotency.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused
from bookshelf.idempotency.models import idempotency_records as records


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class IdempotencyPolicy:
    ttl_seconds: int
    lock_seconds: int


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def claim(
    connection: Connection,
    scope: str,
    key: str,
    request_fingerprint: str,
    policy: IdempotencyPolicy,
) -> StoredResponse | None:
    """Claim ``key`` for a new request, or return the response to replay.

    Raises ``IdempotencyKeyReused`` if the key came with another request, and
    ``IdempotencyKeyInFlight`` while the first request with it is still running.
    """
    now = utc_now()
    existing = (
        await connection.execute(
            select(records).where(records.c.scope == scope, records.c.key == key)
        )
    ).first()
    if existing is not None and existing.expires_at > now:
        if existing.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused()
        if existing.status_code is not None:
            return StoredResponse(
                existing.status_code, existing.response_body, existing.response_headers
            )
        if existing.locked_at + timedelta(seconds=policy.lock_seconds) > now:
            raise IdempotencyKeyInFlight()
        # The first request died holding the key: take it over, unless another retry got
        # there first.
        taken = await connection.execute(
            update(records)
            .where(
                records.c.scope == scope,
                records.c.key == key,
                records.c.locked_at == existing.locked_at,
            )
            .values(locked_at=now)
        )
        if taken.rowcount != 1:
            raise IdempotencyKeyInFlight()
    else:
        await connection.execute(delete(records).where(records.c.expires_at <= now))
        try:
            await connection.execute(
                insert(records).values(
                    scope=scope,
                    key=key,
                    fingerprint=request_fingerprint,
                    locked_at=now,
                    expires_at=now + timedelta(seconds=policy.ttl_seconds),
                )
            )
        except IntegrityViolation:
            # A concurrent request inserted the same key between our read and our insert.
            raise IdempotencyKeyInFlight() from None
    return None


async def complete(connection: Connection, scope: str, key: str, response: StoredResponse) -> None:
    """Store the response to replay, in the request's own transaction."""
    await connection.execute(
        update(records)
        .where(records.c.scope == scope, records.c.key == key)
        .values(
            status_code=response.status_code,
            response_body=response.body,
            response_headers=response.headers,
        )
    )


async def release(connection: Connection, scope: str, key: str) -> None:
    """Forget the claim of a request that failed, so a retry starts afresh."""
    await connection.execute(
        delete(records).where(
            records.c.scope == scope,
            records.c.key == key,
            records.c.status_code.is_(None),
        )
    )
