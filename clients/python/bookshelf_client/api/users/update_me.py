from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.accepted import Accepted
from ...models.problem import Problem
from ...models.profile_update import ProfileUpdate
from ...models.user import User
from ...types import Response


def _get_kwargs(
    *,
    body: ProfileUpdate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/api/v1/users/me",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Accepted | Problem | User | None:
    if response.status_code == 200:
        response_200 = User.from_dict(response.json())

        return response_200

    if response.status_code == 202:
        response_202 = Accepted.from_dict(response.json())

        return response_202

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Accepted | Problem | User]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: ProfileUpdate,
) -> Response[Accepted | Problem | User]:
    """Update Me

     Change your display name or password (with `current_password`); a new password signs
    out your other sessions and voids every link mailed for the account. A new `email` (with
    `current_password`) is confirmed by a link mailed to it, and your current address is told,
    with a link that cancels the change: 202. A `current_password` sent with any change is
    checked.

    Args:
        body (ProfileUpdate): Changes to one's own account; a new password or address needs the
            current password.
            A new address is confirmed by mail before it replaces the current one.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Accepted | Problem | User]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: ProfileUpdate,
) -> Accepted | Problem | User | None:
    """Update Me

     Change your display name or password (with `current_password`); a new password signs
    out your other sessions and voids every link mailed for the account. A new `email` (with
    `current_password`) is confirmed by a link mailed to it, and your current address is told,
    with a link that cancels the change: 202. A `current_password` sent with any change is
    checked.

    Args:
        body (ProfileUpdate): Changes to one's own account; a new password or address needs the
            current password.
            A new address is confirmed by mail before it replaces the current one.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Accepted | Problem | User
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: ProfileUpdate,
) -> Response[Accepted | Problem | User]:
    """Update Me

     Change your display name or password (with `current_password`); a new password signs
    out your other sessions and voids every link mailed for the account. A new `email` (with
    `current_password`) is confirmed by a link mailed to it, and your current address is told,
    with a link that cancels the change: 202. A `current_password` sent with any change is
    checked.

    Args:
        body (ProfileUpdate): Changes to one's own account; a new password or address needs the
            current password.
            A new address is confirmed by mail before it replaces the current one.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Accepted | Problem | User]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: ProfileUpdate,
) -> Accepted | Problem | User | None:
    """Update Me

     Change your display name or password (with `current_password`); a new password signs
    out your other sessions and voids every link mailed for the account. A new `email` (with
    `current_password`) is confirmed by a link mailed to it, and your current address is told,
    with a link that cancels the change: 202. A `current_password` sent with any change is
    checked.

    Args:
        body (ProfileUpdate): Changes to one's own account; a new password or address needs the
            current password.
            A new address is confirmed by mail before it replaces the current one.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Accepted | Problem | User
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
