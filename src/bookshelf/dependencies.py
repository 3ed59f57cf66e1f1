"""Cross-cutting dependencies, as ``Annotated`` aliases routes can read like sentences, and
``with_exit``: how a dependency says what must happen once the handler has returned.

Every alias has exactly one import site, the module that defines it: ``SettingsDep`` here;
``ConnectionDep`` and ``DatabaseDep`` in ``db.connections``; ``AuthDep``, ``CurrentUser``,
``CurrentUserReleased``, ``EditorUser``, ``AdminUser`` and ``RateLimitsDep`` in
``auth.dependencies``; ``BookId`` in ``books.dependencies``; ``Idempotent`` in
``idempotency.dependencies``. Nothing is re-exported."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, Request

from bookshelf.config import Settings

P = ParamSpec("P")
T = TypeVar("T")

# What runs once the handler has returned: given the exception it raised (all None when it
# returned), as ``__aexit__`` is. An exit never swallows the exception: it goes on.
Exit = Callable[
    [type[BaseException] | None, BaseException | None, TracebackType | None], Awaitable[None]
]
Opens = Callable[..., Awaitable[tuple[Any, Exit | None]]]

# Every dependency made by ``with_exit``, and what it was made from (``fastpath.exits`` makes
# the fast form of each from it).
OPENERS: dict[Callable[..., Any], Opens] = {}


def with_exit(
    opens: Callable[P, Awaitable[tuple[T, Exit | None]]],
) -> Callable[P, AsyncIterator[T]]:
    """A dependency from ``opens``, which takes the ``request`` and returns the dependency's
    value and its exit (None: nothing to do).

    The dependency is a dependency with ``yield``, FastAPI's own way of running code after the
    handler; declared ``Depends(dependency, scope="function")``, its exit runs once the handler
    has returned and before the response is sent (FastAPI's default scope would run it after
    the response). With the fast path on, the route runs the same ``opens`` and pushes the exit
    itself, without the generator (``fastpath.exits``); both orders are the same: exits run
    last in, first out."""
    if "request" not in inspect.signature(opens).parameters:
        raise TypeError(f"{opens.__qualname__} must take the request")

    @functools.wraps(opens)
    async def dependency(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        value, exit_ = await opens(*args, **kwargs)
        if exit_ is None:
            yield value
            return
        try:
            yield value
        except BaseException as error:
            await exit_(type(error), error, error.__traceback__)
            raise
        await exit_(None, None, None)

    OPENERS[dependency] = opens
    return dependency


def exit_calling(function: Callable[[], object]) -> Exit:
    """An exit that calls ``function``, whatever the handler did."""

    async def exit_(*_exc_info: object) -> None:
        function()

    return exit_


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
