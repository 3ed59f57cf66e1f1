"""The web app's static files (``web/static/``), served by Bookshelf itself: each under a name
that carries a hash of its content (``bookshelf.3f2a….css``), computed once at start-up, so a
browser may keep it for a year without asking again (``immutable``) and a new release's file
has a new name. They are small and few, so they are held in memory."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import Response

from bookshelf.conditional import if_none_match_hits
from bookshelf.web.exceptions import AssetNotFound

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PATH = "/static"
_CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    content: bytes
    media_type: str
    etag: str


class Assets:
    """Every file of ``directory``, by its hashed name; ``url`` maps a plain name to it."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self._files: dict[str, Asset] = {}
        self._urls: dict[str, str] = {}
        for path in sorted(directory.iterdir()):
            if not path.is_file():
                continue
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()[:16]
            hashed = f"{path.stem}.{digest}{path.suffix}"
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/"):
                media_type += "; charset=utf-8"
            self._files[hashed] = Asset(content, media_type, f'"{digest}"')
            self._urls[path.name] = f"{ASSETS_PATH}/{hashed}"

    def url(self, name: str) -> str:
        """The path of the file ``name`` (a KeyError for a file that does not exist: a
        template naming one fails when it is first rendered, in the tests)."""
        return self._urls[name]

    @property
    def names(self) -> list[str]:
        """The hashed names served."""
        return sorted(self._files)

    def response(self, name: str, if_none_match: str | None) -> Response:
        asset = self._files.get(name)
        if asset is None:
            raise AssetNotFound()
        headers = {"Cache-Control": _CACHE_FOREVER, "ETag": asset.etag}
        if if_none_match_hits(if_none_match, asset.etag):
            return Response(status_code=304, headers=headers)
        return Response(asset.content, media_type=asset.media_type, headers=headers)
