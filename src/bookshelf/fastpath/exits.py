"""Dependencies with an exit, run without a generator (``fast_form``).

Reproduces a dependency with ``yield`` declared ``scope="function"``: its exit runs once the
handler has returned, before the response is sent, last in first out; checked against FastAPI
0.165.0, which keeps those exits on an ``AsyncExitStack`` in the request's scope
(``HANDLER_EXITS``). ``tests/fastpath/test_exits.py`` holds the fast form's exits at the same
point as the generator's, in the same order.

A dependency made by ``dependencies.with_exit`` is declared as that generator, and is what runs
with the fast path off. Its fast form runs the same ``opens`` and pushes the exit on the stack
itself: no generator to drive, and no cancel scope, which FastAPI opens for a request's
generators and which imports anyio's backend into the worker (bench/RESULTS.md).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request

from bookshelf.dependencies import OPENERS

# FastAPI's stack of the exits that run when the handler returns, before the response is sent
# (where it keeps the exits of dependencies with ``yield`` and ``scope="function"``).
HANDLER_EXITS = "fastapi_function_astack"


def handler_exits(request: Request) -> AsyncExitStack:
    """The stack of exits that run when the request's handler returns (last pushed, first
    run)."""
    exits: AsyncExitStack | None = request.scope.get(HANDLER_EXITS)
    if exits is None:
        raise RuntimeError(
            f"no {HANDLER_EXITS} in the request: FastAPI changed how it runs exits "
            "(BOOKSHELF_FAST_PATH=false runs without it)"
        )
    return exits


def has_fast_form(dependency: Callable[..., Any] | None) -> bool:
    return dependency in OPENERS


@functools.cache
def fast_form(dependency: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """The fast form of a dependency made by ``with_exit`` (one per dependency, so FastAPI's
    per-request cache still solves it once)."""
    opens = OPENERS[dependency]

    @functools.wraps(opens)
    async def fast(**values: Any) -> Any:
        value, exit_ = await opens(**values)
        if exit_ is not None:
            handler_exits(values["request"]).push_async_exit(exit_)
        return value

    return fast
