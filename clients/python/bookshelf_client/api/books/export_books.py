from http import HTTPStatus
from io import BytesIO
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.language_code import LanguageCode
from ...models.problem import Problem
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    *,
    q: None | str | Unset = UNSET,
    author: None | str | Unset = UNSET,
    subject: None | str | Unset = UNSET,
    language: LanguageCode | None | Unset = UNSET,
    isbn: None | str | Unset = UNSET,
    published_from: None | str | Unset = UNSET,
    published_to: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_q: None | str | Unset
    if isinstance(q, Unset):
        json_q = UNSET
    else:
        json_q = q
    params["q"] = json_q

    json_author: None | str | Unset
    if isinstance(author, Unset):
        json_author = UNSET
    else:
        json_author = author
    params["author"] = json_author

    json_subject: None | str | Unset
    if isinstance(subject, Unset):
        json_subject = UNSET
    else:
        json_subject = subject
    params["subject"] = json_subject

    json_language: None | str | Unset
    if isinstance(language, Unset):
        json_language = UNSET
    elif isinstance(language, LanguageCode):
        json_language = language.value
    else:
        json_language = language
    params["language"] = json_language

    json_isbn: None | str | Unset
    if isinstance(isbn, Unset):
        json_isbn = UNSET
    else:
        json_isbn = isbn
    params["isbn"] = json_isbn

    json_published_from: None | str | Unset
    if isinstance(published_from, Unset):
        json_published_from = UNSET
    else:
        json_published_from = published_from
    params["published_from"] = json_published_from

    json_published_to: None | str | Unset
    if isinstance(published_to, Unset):
        json_published_to = UNSET
    else:
        json_published_to = published_to
    params["published_to"] = json_published_to

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/books/export",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> File | Problem | None:
    if response.status_code == 200:
        response_200 = File(payload=BytesIO(response.content))

        return response_200

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[File | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    q: None | str | Unset = UNSET,
    author: None | str | Unset = UNSET,
    subject: None | str | Unset = UNSET,
    language: LanguageCode | None | Unset = UNSET,
    isbn: None | str | Unset = UNSET,
    published_from: None | str | Unset = UNSET,
    published_to: None | str | Unset = UNSET,
) -> Response[File | Problem]:
    """Export Books

     Stream every book matching the list's filters as NDJSON (one `Book` per line, in id
    order), read in batches: constant memory, and no database connection held while the
    client reads. At most `BOOKSHELF_EXPORT_PER_ADDRESS` exports stream at once from one
    address (429) and `BOOKSHELF_EXPORT_CONCURRENCY` per worker (503).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[File | Problem]
    """

    kwargs = _get_kwargs(
        q=q,
        author=author,
        subject=subject,
        language=language,
        isbn=isbn,
        published_from=published_from,
        published_to=published_to,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    q: None | str | Unset = UNSET,
    author: None | str | Unset = UNSET,
    subject: None | str | Unset = UNSET,
    language: LanguageCode | None | Unset = UNSET,
    isbn: None | str | Unset = UNSET,
    published_from: None | str | Unset = UNSET,
    published_to: None | str | Unset = UNSET,
) -> File | Problem | None:
    """Export Books

     Stream every book matching the list's filters as NDJSON (one `Book` per line, in id
    order), read in batches: constant memory, and no database connection held while the
    client reads. At most `BOOKSHELF_EXPORT_PER_ADDRESS` exports stream at once from one
    address (429) and `BOOKSHELF_EXPORT_CONCURRENCY` per worker (503).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        File | Problem
    """

    return sync_detailed(
        client=client,
        q=q,
        author=author,
        subject=subject,
        language=language,
        isbn=isbn,
        published_from=published_from,
        published_to=published_to,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    q: None | str | Unset = UNSET,
    author: None | str | Unset = UNSET,
    subject: None | str | Unset = UNSET,
    language: LanguageCode | None | Unset = UNSET,
    isbn: None | str | Unset = UNSET,
    published_from: None | str | Unset = UNSET,
    published_to: None | str | Unset = UNSET,
) -> Response[File | Problem]:
    """Export Books

     Stream every book matching the list's filters as NDJSON (one `Book` per line, in id
    order), read in batches: constant memory, and no database connection held while the
    client reads. At most `BOOKSHELF_EXPORT_PER_ADDRESS` exports stream at once from one
    address (429) and `BOOKSHELF_EXPORT_CONCURRENCY` per worker (503).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[File | Problem]
    """

    kwargs = _get_kwargs(
        q=q,
        author=author,
        subject=subject,
        language=language,
        isbn=isbn,
        published_from=published_from,
        published_to=published_to,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    q: None | str | Unset = UNSET,
    author: None | str | Unset = UNSET,
    subject: None | str | Unset = UNSET,
    language: LanguageCode | None | Unset = UNSET,
    isbn: None | str | Unset = UNSET,
    published_from: None | str | Unset = UNSET,
    published_to: None | str | Unset = UNSET,
) -> File | Problem | None:
    """Export Books

     Stream every book matching the list's filters as NDJSON (one `Book` per line, in id
    order), read in batches: constant memory, and no database connection held while the
    client reads. At most `BOOKSHELF_EXPORT_PER_ADDRESS` exports stream at once from one
    address (429) and `BOOKSHELF_EXPORT_CONCURRENCY` per worker (503).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        File | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            q=q,
            author=author,
            subject=subject,
            language=language,
            isbn=isbn,
            published_from=published_from,
            published_to=published_to,
        )
    ).parsed
