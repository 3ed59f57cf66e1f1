"""The pages' files: served by Bookshelf under names that carry a hash of their content,
kept by browsers for a year, and the same names for as long as the content is the same."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi import FastAPI

from bookshelf.web.assets import STATIC_DIR, Assets
from bookshelf.web.paging import MAX_TRAIL, pager, read_trail
from tests.web.support import Browser


async def test_a_page_links_its_style_sheet_by_content_hash(app: FastAPI, browser: Browser) -> None:
    page = await browser.get("/")
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert href is not None
    sheet = await browser.get(href.group(1))
    again = await browser.client.get(
        href.group(1), headers={"If-None-Match": sheet.headers["etag"]}
    )
    content = (STATIC_DIR / "bookshelf.css").read_bytes()

    assert href.group(1) == f"/static/bookshelf.{hashlib.sha256(content).hexdigest()[:16]}.css"
    assert sheet.status_code == 200
    assert sheet.content == content
    assert sheet.headers["content-type"] == "text/css; charset=utf-8"
    assert sheet.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (again.status_code, again.content) == (304, b"")
    assert (await browser.get("/static/bookshelf.css")).status_code == 404  # unhashed: no
    assert (await browser.get("/static/nope.0000.css")).status_code == 404


def test_a_changed_file_gets_a_new_name(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "site.css").write_text("a{}")
    (folder / "sub").mkdir()  # folders are not served
    first = Assets(folder).url("site.css")
    (folder / "site.css").write_text("a{color:red}")
    assert Assets(folder).url("site.css") != first
    assert Assets(folder).names == [Assets(folder).url("site.css").removeprefix("/static/")]


def test_a_trail_that_is_not_one_is_ignored() -> None:
    assert read_trail("0.abc") == ["0", "abc"]
    assert read_trail("not a cursor!") == []
    assert read_trail(".".join(["abc"] * (MAX_TRAIL + 1))) == []
    deep = pager("/", [], cursor="c9", trail=["c8"], next_cursor=None)
    assert deep.previous == "/?cursor=c8"  # one step back, with no trail further
