from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.review import Review
from ...models.review_update import ReviewUpdate
from ...types import Response


def _get_kwargs(
    book_id: str,
    review_id: str,
    *,
    body: ReviewUpdate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/api/v1/books/{book_id}/reviews/{review_id}".format(
            book_id=quote(str(book_id), safe=""),
            review_id=quote(str(review_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Review | None:
    if response.status_code == 200:
        response_200 = Review.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Review]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    book_id: str,
    review_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewUpdate,
) -> Response[Problem | Review]:
    """Update Review

     Change your review (anyone else's is 404).

    Args:
        book_id (str):
        review_id (str):
        body (ReviewUpdate): A merge patch: absent fields are unchanged, ``body: null`` removes
            the text.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Review]
    """

    kwargs = _get_kwargs(
        book_id=book_id,
        review_id=review_id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    book_id: str,
    review_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewUpdate,
) -> Problem | Review | None:
    """Update Review

     Change your review (anyone else's is 404).

    Args:
        book_id (str):
        review_id (str):
        body (ReviewUpdate): A merge patch: absent fields are unchanged, ``body: null`` removes
            the text.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Review
    """

    return sync_detailed(
        book_id=book_id,
        review_id=review_id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    book_id: str,
    review_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewUpdate,
) -> Response[Problem | Review]:
    """Update Review

     Change your review (anyone else's is 404).

    Args:
        book_id (str):
        review_id (str):
        body (ReviewUpdate): A merge patch: absent fields are unchanged, ``body: null`` removes
            the text.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Review]
    """

    kwargs = _get_kwargs(
        book_id=book_id,
        review_id=review_id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    book_id: str,
    review_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewUpdate,
) -> Problem | Review | None:
    """Update Review

     Change your review (anyone else's is 404).

    Args:
        book_id (str):
        review_id (str):
        body (ReviewUpdate): A merge patch: absent fields are unchanged, ``body: null`` removes
            the text.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Review
    """

    return (
        await asyncio_detailed(
            book_id=book_id,
            review_id=review_id,
            client=client,
            body=body,
        )
    ).parsed
