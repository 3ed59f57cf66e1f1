from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.book_page import BookPage
from ...models.book_sort import BookSort
from ...models.language_code import LanguageCode
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    q: None | str | Unset = UNSET,
    author: None | str | Unset = UNSET,
    subject: None | str | Unset = UNSET,
    language: LanguageCode | None | Unset = UNSET,
    isbn: None | str | Unset = UNSET,
    published_from: None | str | Unset = UNSET,
    published_to: None | str | Unset = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    sort: BookSort | None | Unset = UNSET,
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

    params["limit"] = limit

    json_cursor: None | str | Unset
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor

    json_sort: None | str | Unset
    if isinstance(sort, Unset):
        json_sort = UNSET
    elif isinstance(sort, BookSort):
        json_sort = sort.value
    else:
        json_sort = sort
    params["sort"] = json_sort

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/books",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> BookPage | Problem | None:
    if response.status_code == 200:
        response_200 = BookPage.from_dict(response.json())

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[BookPage | Problem]:
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
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    sort: BookSort | None | Unset = UNSET,
) -> Response[BookPage | Problem]:
    """List Books

     List books, filtered, searched and sorted, one page at a time (keyset pagination).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.
        limit (int | Unset): Page size. Default: 20.
        cursor (None | str | Unset): The `next_cursor` of the previous page.
        sort (BookSort | None | Unset): Sort order; `-` means descending. Default: `relevance`
            when `q` is given (only allowed then), otherwise `-created_at`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BookPage | Problem]
    """

    kwargs = _get_kwargs(
        q=q,
        author=author,
        subject=subject,
        language=language,
        isbn=isbn,
        published_from=published_from,
        published_to=published_to,
        limit=limit,
        cursor=cursor,
        sort=sort,
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
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    sort: BookSort | None | Unset = UNSET,
) -> BookPage | Problem | None:
    """List Books

     List books, filtered, searched and sorted, one page at a time (keyset pagination).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.
        limit (int | Unset): Page size. Default: 20.
        cursor (None | str | Unset): The `next_cursor` of the previous page.
        sort (BookSort | None | Unset): Sort order; `-` means descending. Default: `relevance`
            when `q` is given (only allowed then), otherwise `-created_at`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BookPage | Problem
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
        limit=limit,
        cursor=cursor,
        sort=sort,
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
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    sort: BookSort | None | Unset = UNSET,
) -> Response[BookPage | Problem]:
    """List Books

     List books, filtered, searched and sorted, one page at a time (keyset pagination).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.
        limit (int | Unset): Page size. Default: 20.
        cursor (None | str | Unset): The `next_cursor` of the previous page.
        sort (BookSort | None | Unset): Sort order; `-` means descending. Default: `relevance`
            when `q` is given (only allowed then), otherwise `-created_at`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BookPage | Problem]
    """

    kwargs = _get_kwargs(
        q=q,
        author=author,
        subject=subject,
        language=language,
        isbn=isbn,
        published_from=published_from,
        published_to=published_to,
        limit=limit,
        cursor=cursor,
        sort=sort,
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
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    sort: BookSort | None | Unset = UNSET,
) -> BookPage | Problem | None:
    """List Books

     List books, filtered, searched and sorted, one page at a time (keyset pagination).

    Args:
        q (None | str | Unset): Full-text search over title, subtitle and authors (case-
            insensitive).
        author (None | str | Unset): Books by this author (case-insensitive).
        subject (None | str | Unset): Books with this subject (case-insensitive).
        language (LanguageCode | None | Unset):
        isbn (None | str | Unset): ISBN-10 or ISBN-13 of the book.
        published_from (None | str | Unset): Published on or after the start of this date.
        published_to (None | str | Unset): Published on or before the end of this date.
        limit (int | Unset): Page size. Default: 20.
        cursor (None | str | Unset): The `next_cursor` of the previous page.
        sort (BookSort | None | Unset): Sort order; `-` means descending. Default: `relevance`
            when `q` is given (only allowed then), otherwise `-created_at`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BookPage | Problem
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
            limit=limit,
            cursor=cursor,
            sort=sort,
        )
    ).parsed
