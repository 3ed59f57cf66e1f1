"""The floor: the least work Python can do to answer the bench's requests.

A bare Starlette app on an asyncpg pool, serialising with orjson. It runs the same SQL as
Bookshelf for each benchmarked request (the same statements, in the same transactions) and answers
with the same JSON, but has no validation, no error handling, no middleware, no logging and no
metrics. Bookshelf's throughput is reported as a ratio to this app, measured in the same run, so
the number says what the production features and the framework cost, not how fast this machine is.

Only what the bench requests is implemented. Run it with ``uvicorn bench.floor:app`` and
``FLOOR_DATABASE_URL`` / ``FLOOR_JWT_SECRET`` (plus the issuer and audience Bookshelf uses).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BOOK_COLUMNS = (
    "id, isbn, title, subtitle, authors, publisher, published_date, page_count, language, "
    "subjects, description, version, created_at, updated_at, created_by, updated_by, "
    "rating_count, rating_sum"
)
SORTS = {
    "title": ("sort_title", "ASC"),
    "-title": ("sort_title", "DESC"),
    "published_date": ("published_sort", "ASC"),
    "-published_date": ("published_sort", "DESC"),
    "created_at": ("created_at", "ASC"),
    "-created_at": ("created_at", "DESC"),
}
PRINCIPAL_SQL = (
    "SELECT users.id, users.email, users.display_name, users.role, users.is_active, "
    "users.email_verified, "
    "users.created_at, users.updated_at, auth_sessions.revoked_at, auth_sessions.expires_at "
    "FROM users JOIN auth_sessions ON auth_sessions.user_id = users.id "
    "WHERE users.id = $1 AND auth_sessions.id = $2"
)
_CENTS = Decimal("0.01")
JSON = "application/json"


def _book(record: asyncpg.Record) -> dict[str, Any]:
    book = dict(record)
    count, total = book.pop("rating_count"), book.pop("rating_sum")
    book["rating_count"] = count
    book["rating_average"] = (
        float((Decimal(total) / count).quantize(_CENTS, rounding=ROUND_HALF_UP)) if count else None
    )
    return book


def _cursor(sort: str, key: Any, book_id: uuid.UUID) -> str:
    # Byte for byte what Bookshelf's cursors hold (pydantic's JSON): UTF-8 as is, and UTC
    # timestamps ending in "Z".
    if isinstance(key, datetime):
        key = key.isoformat().replace("+00:00", "Z")
    elif hasattr(key, "isoformat"):
        key = key.isoformat()
    payload = json.dumps([1, sort, [key, str(book_id)]], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


async def _principal(request: Request, connection: asyncpg.Connection) -> asyncpg.Record | None:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    claims = jwt.decode(
        token,
        request.app.state.jwt_secret,
        algorithms=["HS256"],
        audience=request.app.state.jwt_audience,
        issuer=request.app.state.jwt_issuer,
    )
    row: asyncpg.Record | None = await connection.fetchrow(
        PRINCIPAL_SQL, uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
    )
    if row is None or not row["is_active"] or row["revoked_at"] is not None:
        return None
    return row


def _json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    # default=str: asyncpg returns its own UUID type, which orjson does not know.
    return Response(orjson.dumps(content, default=str), status_code, headers, media_type=JSON)


async def get_book(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(
        f"SELECT {BOOK_COLUMNS} FROM books WHERE id = $1",
        uuid.UUID(request.path_params["book_id"]),
    )
    if row is None:
        return Response(status_code=404)
    return _json(_book(row), headers={"ETag": f'"{row["version"]}"'})


async def list_books(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    params = request.query_params
    limit = int(params.get("limit", 20))
    where: list[str] = []
    args: list[Any] = []
    extra = ""
    if "language" in params:
        args.append(params["language"])
        where.append(f"language = ${len(args)}")
    if "author" in params:
        args.append(params["author"].strip().casefold())
        where.append(f"id IN (SELECT book_id FROM book_authors WHERE name_key = ${len(args)})")
    if "q" in params:
        args.append(params["q"])
        query = f"plainto_tsquery('simple'::regconfig, ${len(args)})"
        where.append(f"search_vector @@ {query}")
        extra = f", CAST(ts_rank(search_vector, {query}) AS FLOAT8) AS sort_key"
        order_by = "sort_key DESC, id DESC"
        sort = "relevance"
    else:
        sort = params.get("sort", "-created_at")
        column, direction = SORTS[sort]
        extra = f", {column} AS sort_key"
        order_by = f"{column} {direction}, id {direction}"
    args.append(limit + 1)
    sql = (
        f"SELECT {BOOK_COLUMNS}{extra} FROM books"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {order_by} LIMIT ${len(args)}"
    )
    rows = await pool.fetch(sql, *args)
    items = []
    for row in rows[:limit]:
        book = _book(row)
        del book["sort_key"]
        items.append(book)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        key = last["sort_key"]
        next_cursor = _cursor(sort, key, last["id"])
    return _json({"items": items, "next_cursor": next_cursor})


async def create_book(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    data = orjson.loads(await request.body())
    async with pool.acquire() as connection, connection.transaction():
        principal = await _principal(request, connection)
        if principal is None or principal["role"] not in ("editor", "admin"):
            return Response(status_code=403)
        book_id, now, actor = uuid.uuid4(), datetime.now(UTC), principal["id"]
        book = {
            "id": book_id,
            "isbn": data.get("isbn"),
            "title": data["title"],
            "subtitle": data.get("subtitle"),
            "authors": data["authors"],
            "publisher": data.get("publisher"),
            "published_date": data.get("published_date"),
            "page_count": data.get("page_count"),
            "language": data.get("language"),
            "subjects": data.get("subjects", []),
            "description": data.get("description"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "created_by": actor,
            "updated_by": actor,
            "rating_count": 0,
            "rating_average": None,
        }
        await connection.execute(
            "INSERT INTO books (id, isbn, title, subtitle, authors, publisher, published_date, "
            "page_count, language, subjects, description, sort_title, published_sort, version, "
            "created_at, updated_at, created_by, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9, $10, $11, $12, '9999-12-31', 1, $13, $13, $14, $14)",
            book_id,
            book["isbn"],
            book["title"],
            book["subtitle"],
            book["authors"],
            book["publisher"],
            book["published_date"],
            book["page_count"],
            book["language"],
            book["subjects"],
            book["description"],
            book["title"].strip().casefold(),
            now,
            actor,
        )
        for table, names in (
            ("book_authors", book["authors"]),
            ("book_subjects", book["subjects"]),
        ):
            if names:
                await connection.executemany(
                    f"INSERT INTO {table} (book_id, position, name_key) VALUES ($1, $2, $3)",
                    [(book_id, i, name.strip().casefold()) for i, name in enumerate(names)],
                )
    return _json(
        book,
        201,
        {"ETag": '"1"', "Location": f"/api/v1/books/{book_id}"},
    )


async def update_book(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    data = orjson.loads(await request.body())
    version = int(request.headers["if-match"].strip('"'))
    async with pool.acquire() as connection, connection.transaction():
        principal = await _principal(request, connection)
        if principal is None or principal["role"] not in ("editor", "admin"):
            return Response(status_code=403)
        row = await connection.fetchrow(
            "UPDATE books SET title = $1, sort_title = $2, version = version + 1, "
            "updated_at = $3, updated_by = $4 WHERE id = $5 AND version = ANY($6) "
            f"RETURNING {BOOK_COLUMNS}",
            data["title"],
            data["title"].strip().casefold(),
            datetime.now(UTC),
            principal["id"],
            uuid.UUID(request.path_params["book_id"]),
            [version],
        )
    if row is None:
        return Response(status_code=412)
    return _json(_book(row), headers={"ETag": f'"{row["version"]}"'})


async def read_me(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as connection:
        principal = await _principal(request, connection)
    if principal is None:
        return Response(status_code=401)
    user = dict(principal)
    del user["revoked_at"], user["expires_at"]
    return _json(user)


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.jwt_secret = os.environ["FLOOR_JWT_SECRET"]
    app.state.jwt_issuer = os.environ["FLOOR_JWT_ISSUER"]
    app.state.jwt_audience = os.environ["FLOOR_JWT_AUDIENCE"]
    pool_size = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(
        os.environ["FLOOR_DATABASE_URL"],
        min_size=pool_size,
        max_size=pool_size,
        init=_init_connection,
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/api/v1/books", list_books, methods=["GET"]),
        Route("/api/v1/books", create_book, methods=["POST"]),
        Route("/api/v1/books/{book_id}", get_book, methods=["GET"]),
        Route("/api/v1/books/{book_id}", update_book, methods=["PATCH"]),
        Route("/api/v1/users/me", read_me, methods=["GET"]),
    ],
    lifespan=lifespan,
)
