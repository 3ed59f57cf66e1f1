"""Dependencies shared by every feature, as ``Annotated`` aliases routes can read like sentences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bookshelf.config import Settings
from bookshelf.db.connections import ConnectionDep


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]

__all__ = ["ConnectionDep", "SettingsDep"]
