"""Wiring the web app into the application (``main.create_app``)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from bookshelf.config import Settings
from bookshelf.web import accounts, admin, catalog, editing, profile
from bookshelf.web.errors import install_error_pages
from bookshelf.web.site import Site

# In the order they are matched: the fixed paths under /books before /books/{book_id}.
PAGE_ROUTERS: tuple[APIRouter, ...] = (
    editing.router,
    catalog.router,
    accounts.router,
    profile.router,
    admin.router,
)


def install_web(app: FastAPI, settings: Settings) -> Callable[[Response], Response]:
    """Build the site (``app.state.site``) and add the error pages (after the problem
    handlers, which they wrap); the pages' routes are ``PAGE_ROUTERS``. Returns the conversion
    of a problem into its page, for the request pipeline's refusals."""
    site = Site.from_settings(settings)
    app.state.site = site
    return install_error_pages(app, site)
