from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.book import Book
from ...models.book_update import BookUpdate
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    book_id: str,
    *,
    body: BookUpdate | BookUpdate | Unset = UNSET,
    if_match: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_match, Unset):
        headers["if-match"] = if_match

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/api/v1/books/{book_id}".format(
            book_id=quote(str(book_id), safe=""),
        ),
    }

    if isinstance(body, BookUpdate):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, BookUpdate):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/merge-patch+json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Book | Problem | None:
    if response.status_code == 200:
        response_200 = Book.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 412:
        response_412 = Problem.from_dict(response.json())

        return response_412

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Book | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: BookUpdate | BookUpdate | Unset = UNSET,
    if_match: None | str | Unset = UNSET,
) -> Response[Book | Problem]:
    """Update Book

     Change a book with a JSON merge patch (editors); `null` clears an optional field.

    Args:
        book_id (str):
        if_match (None | str | Unset): Only change the book if its ETag is one of these (e.g.
            `"3"`), else 412.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Book | Problem]
    """

    kwargs = _get_kwargs(
        book_id=book_id,
        body=body,
        if_match=if_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: BookUpdate | BookUpdate | Unset = UNSET,
    if_match: None | str | Unset = UNSET,
) -> Book | Problem | None:
    """Update Book

     Change a book with a JSON merge patch (editors); `null` clears an optional field.

    Args:
        book_id (str):
        if_match (None | str | Unset): Only change the book if its ETag is one of these (e.g.
            `"3"`), else 412.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Book | Problem
    """

    return sync_detailed(
        book_id=book_id,
        client=client,
        body=body,
        if_match=if_match,
    ).parsed


async def asyncio_detailed(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: BookUpdate | BookUpdate | Unset = UNSET,
    if_match: None | str | Unset = UNSET,
) -> Response[Book | Problem]:
    """Update Book

     Change a book with a JSON merge patch (editors); `null` clears an optional field.

    Args:
        book_id (str):
        if_match (None | str | Unset): Only change the book if its ETag is one of these (e.g.
            `"3"`), else 412.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Book | Problem]
    """

    kwargs = _get_kwargs(
        book_id=book_id,
        body=body,
        if_match=if_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: BookUpdate | BookUpdate | Unset = UNSET,
    if_match: None | str | Unset = UNSET,
) -> Book | Problem | None:
    """Update Book

     Change a book with a JSON merge patch (editors); `null` clears an optional field.

    Args:
        book_id (str):
        if_match (None | str | Unset): Only change the book if its ETag is one of these (e.g.
            `"3"`), else 412.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.
        body (BookUpdate): A JSON merge patch (RFC 7396): absent fields are unchanged, ``null``
            clears a field.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Book | Problem
    """

    return (
        await asyncio_detailed(
            book_id=book_id,
            client=client,
            body=body,
            if_match=if_match,
        )
    ).parsed
