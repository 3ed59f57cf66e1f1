"""Templates (Jinja2, autoescaped, every one compiled once at start-up) and the responses
that carry a rendered page: an ``ETag`` of the bytes sent, 304 for a browser that has them,
and never a shared cache (a page may name its visitor)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bookshelf.books.schemas import Book
from bookshelf.conditional import if_none_match_hits
from bookshelf.web.assets import Assets

TEMPLATES_DIR = Path(__file__).parent / "templates"
HTML = "text/html; charset=utf-8"
# Revalidated on every use (cheap: a 304), kept by the visitor's browser only.
PRIVATE = "private, no-cache"
# Pages that hold a mailed link's token: never stored at all.
NO_STORE = "no-store"


class Templates:
    def __init__(self, assets: Assets) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            auto_reload=False,  # never looks at the files again once compiled
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.globals["asset"] = assets.url
        self.environment.globals["rating"] = rating
        # Compiled now, so no request pays for it, and a broken template stops the start.
        self._compiled = {
            name: self.environment.get_template(name)
            for name in self.environment.list_templates(extensions=["html"])
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._compiled)

    def render(self, name: str, context: dict[str, Any]) -> bytes:
        return self._compiled[name].render(context).encode()


def rating(book: Book) -> str:
    """A book's rating in words (a function, not a macro: the catalog shows it 20 times)."""
    if not book.rating_count:
        return "No ratings yet"
    readers = "reader" if book.rating_count == 1 else "readers"
    return f"Rated {book.rating_average:.2f} out of 5 by {book.rating_count} {readers}"


def page_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def html_response(
    request: Request, body: bytes, *, status: int = 200, cache: str = PRIVATE
) -> Response:
    """A rendered page. A successful GET carries the ``ETag`` of its bytes and is a 304 when
    the browser's copy has it: the page was rendered all the same (a page shows what changes
    beside its main object, such as reviews), but not sent again."""
    headers = {"Cache-Control": cache, "Vary": "Cookie"}
    if status == 200 and request.method in ("GET", "HEAD") and cache != NO_STORE:
        tag = page_etag(body)
        headers["ETag"] = tag
        if if_none_match_hits(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers=headers)
    return HTMLResponse(body, status_code=status, headers=headers)


def redirect(location: str) -> Response:
    """After a form post: see the result with a GET (a reload does not post again)."""
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": NO_STORE})
