"""The fast path's middleware stack (``fastpath.middleware.BookshelfAPI``) is FastAPI's own
minus the two layers it names: built both ways around the same app's middleware and handlers
and compared layer by layer, so a layer a later FastAPI adds (or a change to one it keeps)
fails here. With the fast path off the app is plain FastAPI, its stack FastAPI's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bookshelf.fastpath.middleware import LEFT_OUT, BookshelfAPI
from bookshelf.main import create_app
from tests.conftest import make_settings


def _layers(app: FastAPI, stack: Any) -> list[tuple[str, dict[str, Any]]]:
    """Each layer down to the router: its class and what it was built with (but the app)."""
    layers = []
    while stack is not app.router:
        settings = {key: value for key, value in vars(stack).items() if key != "app"}
        layers.append((type(stack).__name__, settings))
        stack = stack.app
    return layers


def _comparable(layers: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[str]]]:
    # Two builds make two instances of each layer: what each was given is compared by name
    # here, and the error handlers by value (``_handlers``).
    return [(name, sorted(settings)) for name, settings in layers]


def _handlers(settings: dict[str, Any]) -> dict[str, Any]:
    """A layer's error handlers, a bound method by its function (each build binds anew)."""
    handlers: dict[str, Any] = {}
    for key in ("handler", "_exception_handlers", "_status_handlers", "debug"):
        value = settings.get(key)
        if isinstance(value, dict):
            value = {k: getattr(v, "__func__", v) for k, v in value.items()}
        handlers[key] = value
    return handlers


def _app(tmp_path: Path, *, fast_path: bool) -> FastAPI:
    database = f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"
    return create_app(make_settings(database, fast_path=fast_path, cors_origins="https://a.test"))


def test_the_lean_stack_is_fastapis_without_the_layers_it_leaves_out(tmp_path: Path) -> None:
    app = _app(tmp_path, fast_path=True)
    assert type(app) is BookshelfAPI

    lean = _layers(app, app.build_middleware_stack())
    stock = _layers(app, FastAPI.build_middleware_stack(app))

    assert [name for name, _ in stock if name in LEFT_OUT] == sorted(LEFT_OUT, reverse=True)
    assert _comparable(lean) == _comparable([layer for layer in stock if layer[0] not in LEFT_OUT])
    for (name, ours), (_, fastapis) in zip(
        lean, [layer for layer in stock if layer[0] not in LEFT_OUT], strict=True
    ):
        assert _handlers(ours) == _handlers(fastapis), name
    assert [name for name, _ in lean] == [
        "ServerErrorMiddleware",
        "RequestPipeline",
        "ExceptionMiddleware",
        "AsyncExitStackMiddleware",
    ]


def test_with_the_fast_path_off_the_stack_is_plain_fastapis(tmp_path: Path) -> None:
    app = _app(tmp_path, fast_path=False)

    assert type(app) is FastAPI
    names = [name for name, _ in _layers(app, app.build_middleware_stack())]
    assert set(names) > LEFT_OUT
    assert "RequestPipeline" in names
