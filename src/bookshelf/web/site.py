"""What the web app builds once per app (``app.state.site``): its templates and assets, its
cookies and tokens, and the settings its pages read."""

from __future__ import annotations

from dataclasses import dataclass

from bookshelf.config import Settings
from bookshelf.web.assets import Assets
from bookshelf.web.pages import Templates
from bookshelf.web.security import Cookies, FormTokens, Origins, SessionTokens


@dataclass(frozen=True)
class Site:
    settings: Settings
    assets: Assets
    templates: Templates
    cookies: Cookies
    sessions: SessionTokens
    forms: FormTokens
    origins: Origins

    @classmethod
    def from_settings(cls, settings: Settings) -> Site:
        assets = Assets()
        return cls(
            settings=settings,
            assets=assets,
            templates=Templates(assets),
            cookies=Cookies.from_settings(settings),
            sessions=SessionTokens(settings),
            forms=FormTokens(settings.jwt_secrets),
            origins=Origins(settings.public_url),
        )
