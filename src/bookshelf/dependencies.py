"""Cross-cutting dependencies, as ``Annotated`` aliases routes can read like sentences.

Every alias has exactly one import site, the module that defines it: ``SettingsDep`` here;
``ConnectionDep`` and ``DatabaseDep`` in ``db.connections``; ``AuthDep``, ``CurrentUser``,
``CurrentUserReleased``, ``EditorUser``, ``AdminUser`` and ``RateLimitsDep`` in
``auth.dependencies``; ``BookId`` in ``books.dependencies``; ``Idempotent`` in
``idempotency.dependencies``. Nothing is re-exported."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bookshelf.config import Settings


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
