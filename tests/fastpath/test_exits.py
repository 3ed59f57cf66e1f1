"""A dependency made by ``dependencies.with_exit`` runs its exit once the handler has returned
and before the response starts, last in first out, given the handler's exception; an exit that
fails turns the answer into an error, never the success it would have been. The same, event
for event, as FastAPI's dependency with ``yield`` (the fast path off) and in its fast form
(``fastpath.exits``, on the stack FastAPI keeps in the request's scope)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.types import Message

from bookshelf.dependencies import Exit, with_exit
from bookshelf.fastpath import routes as fast_routes
from bookshelf.fastpath.exits import handler_exits

events: list[str] = []
MODES = [pytest.param(True, id="fast-path"), pytest.param(False, id="stock")]


def _exit(name: str, *, fails: bool = False) -> Exit:
    async def exit_(exc_type: type[BaseException] | None, *_exc_info: object) -> None:
        events.append(f"exit {name} {exc_type.__name__ if exc_type else 'ok'}")
        if fails:
            raise KeyError(name)

    return exit_


@with_exit
async def outer(request: Request) -> tuple[str, Exit]:
    events.append("open outer")
    return "outer", _exit("outer")


@with_exit
async def inner(
    request: Request, given: Annotated[str, Depends(outer, scope="function")]
) -> tuple[str, Exit]:
    events.append(f"open inner after {given}")
    return "inner", _exit("inner", fails=request.query_params.get("exit") == "fails")


@with_exit
async def nothing_to_do(request: Request) -> tuple[None, None]:
    return None, None


router = APIRouter()


@router.get("/exits")
async def endpoint(
    request: Request,
    first: Annotated[str, Depends(outer, scope="function")],
    second: Annotated[str, Depends(inner, scope="function")],
    _none: Annotated[None, Depends(nothing_to_do, scope="function")],
) -> Response:
    events.append("handler")
    if request.query_params.get("handler") == "fails":
        raise LookupError("the handler failed")
    return PlainTextResponse(f"{first} {second}")


async def _conflict(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("conflict", status_code=409)


def _app(*, fast_path: bool) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(LookupError, _conflict)
    if fast_path:
        fast_routes.add_routes(app, router)
    else:
        app.include_router(router)
    return app


async def _get(app: FastAPI, query: str = "") -> list[str]:
    events.clear()
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/exits",
        "raw_path": b"/exits",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            events.append(f"response {message['status']}")

    await app(scope, receive, send)
    return list(events)


@pytest.mark.parametrize("fast_path", MODES)
async def test_exits_run_after_the_handler_before_the_response_last_in_first_out(
    fast_path: bool,
) -> None:
    assert await _get(_app(fast_path=fast_path)) == [
        "open outer",
        "open inner after outer",
        "handler",
        "exit inner ok",
        "exit outer ok",
        "response 200",
    ]


@pytest.mark.parametrize("fast_path", MODES)
async def test_exits_are_given_the_handlers_exception(fast_path: bool) -> None:
    assert await _get(_app(fast_path=fast_path), "handler=fails") == [
        "open outer",
        "open inner after outer",
        "handler",
        "exit inner LookupError",
        "exit outer LookupError",
        "response 409",
    ]


@pytest.mark.parametrize("fast_path", MODES)
async def test_a_failing_exit_answers_instead_of_the_success(fast_path: bool) -> None:
    """What a failed commit does: the handler succeeded, its exit did not, and the client
    gets the error rather than the 200 the handler returned."""
    assert await _get(_app(fast_path=fast_path), "exit=fails") == [
        "open outer",
        "open inner after outer",
        "handler",
        "exit inner ok",
        "exit outer KeyError",
        "response 409",
    ]


def test_without_fastapis_stack_the_fast_form_says_what_changed() -> None:
    request = Request({"type": "http", "headers": [], "query_string": b""})
    with pytest.raises(RuntimeError, match="BOOKSHELF_FAST_PATH=false"):
        handler_exits(request)


def test_a_dependency_with_an_exit_must_take_the_request() -> None:
    async def opens() -> tuple[None, None]:
        return None, None

    with pytest.raises(TypeError, match="must take the request"):
        with_exit(opens)
