"""The web app in a real browser: Debian's Chromium driven by Playwright, against a real server
(uvicorn on a free port) on SQLite and on PostgreSQL, with its mails delivered to a real SMTP
server (aiosmtpd) by the in-process mail worker.

Every page a flow meets is checked as it is shown: axe-core (vendored, ``vendor/README.md``)
finds no WCAG 2.x A/AA violation, the browser reports no Content-Security-Policy violation,
and a screenshot is saved under ``BOOKSHELF_TEST_ARTIFACTS`` (else the test's tmp_path). The
pages carry no script at all (their CSP allows none), so they work alike with JavaScript off;
one flow runs with it off to show it. Without a Chromium the tests are skipped, except under
CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from shutil import which
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from bookshelf.main import create_app
from bookshelf.users.schemas import Role
from tests.conftest import (
    BACKENDS,
    database_account,
    make_settings,
    migrate_database,
    new_postgres_database,
    remove_postgres_database,
)
from tests.factories import Account, book_payload
from tests.mail.support import SmtpServer, smtp_server, wait_until
from tests.servers import free_port, running_server
from tests.test_browser import CHROMIUM_ARGS, CHROMIUM_CANDIDATES

pytestmark = pytest.mark.browser
T = TypeVar("T")

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
UI_TIMEOUT_MS = 10_000
PASSWORD = "correct horse battery staple"
_LINK = re.compile(r"https?://\S+/(?:verify-email|reset-password|cancel-email-change)\?token=\S+")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end on a thread of its own: Playwright's sync API keeps an
    event loop running on this one."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    configured = os.environ.get("BOOKSHELF_TEST_CHROMIUM")
    found = configured or next(filter(None, map(which, CHROMIUM_CANDIDATES)), None)
    if found is None or not Path(found).exists():
        reason = "no Chromium found (apt-get install chromium); Playwright cannot download one"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: the browser tests must run)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=found, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    source = AXE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, "vendor/axe.min.js was changed"
    return source.decode()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    root = os.environ.get("BOOKSHELF_TEST_ARTIFACTS")
    folder = Path(root) / "screenshots" if root else tmp_path / "screenshots"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    path = folder / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Site:
    """A running server, its database and the SMTP server its mails go to."""

    url: str
    database_url: str
    smtp: SmtpServer

    def account(self, role: Role, name: str = "") -> Account:
        return run(database_account(self.database_url, role, display_name=name or None))

    def add_book(self, editor: Account, **fields: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/api/v1/books", json=book_payload(**fields), headers=editor.headers
        )
        assert response.status_code == 201, response.text
        book: dict[str, Any] = response.json()
        return book

    def mailed_link(self, recipient: str, page: str) -> str:
        """The link to ``page`` in the newest mail ``recipient`` received."""
        wait_until(lambda: any(page in m.get_content() for m in self.smtp.recorder.to(recipient)))
        mails = [m for m in self.smtp.recorder.to(recipient) if page in m.get_content()]
        links = [link for link in _LINK.findall(mails[-1].get_content()) if page in link]
        return links[-1]


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    database = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    else:
        database = f"bookshelf_web_browser_{uuid.uuid4().hex[:12]}"
        url = run(new_postgres_database(database))
    try:
        run(migrate_database(url))
        port = free_port()
        with smtp_server() as smtp:
            settings = make_settings(
                url,
                require_verified_email=True,
                public_url=f"http://127.0.0.1:{port}",
                smtp_url=smtp.url,
                inprocess_worker=True,
                mail_poll_interval_seconds=0.1,
            )
            with running_server(create_app(settings), port=port) as base_url:
                yield Site(base_url, url, smtp)
    finally:
        if database is not None:
            run(remove_postgres_database(database))


@dataclass
class Checker:
    """Checks every page shown, and keeps its screenshot."""

    axe_source: str
    folder: Path
    console: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.set_default_navigation_timeout(UI_TIMEOUT_MS)
        page.on("console", lambda message: self.console.append(message.text))
        return page

    def __call__(self, page: Page, name: str, *, axe: bool = True) -> None:
        assert page.locator("script").count() == 0, name
        page.screenshot(path=str(self.folder / f"{len(self.shown):02d}-{name}.png"), full_page=True)
        self.shown.append(name)
        violations = [line for line in self.console if "Content Security Policy" in line]
        assert violations == [], (name, violations)
        if axe:
            page.evaluate(self.axe_source)
            found = page.evaluate(
                "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
                ".violations.map(v => ({id: v.id, help: v.help,"
                " nodes: v.nodes.map(n => n.target.join(' '))}))",
                AXE_TAGS,
            )
            assert found == [], f"{name}: {json.dumps(found, indent=1)}"


@pytest.fixture
def check(axe_source: str, artifacts: Path) -> Checker:
    return Checker(axe_source, artifacts)


@contextlib.contextmanager
def context(browser: Browser, *, javascript: bool = True) -> Iterator[BrowserContext]:
    opened = browser.new_context(java_script_enabled=javascript)
    try:
        yield opened
    finally:
        opened.close()


def sign_in(page: Page, site: Site, email: str, password: str) -> None:
    page.goto(f"{site.url}/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_reader_registers_follows_the_mail_signs_in_searches_and_reviews(
    chromium: Browser, site: Site, check: Checker
) -> None:
    editor = site.account(Role.EDITOR)
    site.add_book(editor, title="The Left Hand of Darkness", authors=["Ursula K. Le Guin"])
    site.add_book(editor, title="A Wizard of Earthsea", authors=["Ursula K. Le Guin"])
    email = f"reader-{uuid.uuid4().hex[:8]}@example.org"
    with context(chromium) as browser:
        page = check.watch(browser.new_page())
        page.goto(f"{site.url}/")
        check(page, "home")
        page.get_by_role("link", name="Register").click()
        check(page, "register")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Name shown with your reviews").fill("Shevek")
        page.get_by_label("Password").fill("too short")  # refused beside the field
        page.get_by_role("button", name="Register").click()
        expect(page.locator("#error-password")).to_be_visible()
        check(page, "register-refused")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Register").click()
        expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
        check(page, "registered")

        page.goto(site.mailed_link(email, "verify-email"))
        check(page, "verify-email")
        page.get_by_role("button", name="Confirm my address").click()
        expect(page.get_by_role("heading", name="Address confirmed")).to_be_visible()
        check(page, "verified")

        # Sign in with the keyboard alone, the focus visible at every step.
        page.goto(f"{site.url}/sign-in")
        check(page, "sign-in")
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "field-email":
                break
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.type(email)
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        check(page, "home-signed-in")

        page.get_by_label("Search titles and authors").fill("left hand")
        page.keyboard.press("Enter")
        results = page.locator(".book-item h3 a")
        expect(results).to_have_count(1)
        check(page, "search")
        results.first.click()
        expect(page.get_by_role("heading", name="The Left Hand of Darkness")).to_be_visible()
        check(page, "book")
        page.get_by_label("5", exact=True).check()
        page.get_by_role("textbox", name="Review").fill("Winter, and what it does to people.")
        page.get_by_role("button", name="Publish your review").click()
        expect(page.get_by_text("Rated 5.00 out of 5 by 1 reader")).to_be_visible()
        expect(page.get_by_role("button", name="Save your review")).to_be_visible()
        check(page, "book-reviewed")


def test_a_reset_password_signs_the_other_sessions_out_with_javascript_off(
    chromium: Browser, site: Site, check: Checker
) -> None:
    reader = site.account(Role.READER)
    with context(chromium) as elsewhere, context(chromium, javascript=False) as here:
        other = check.watch(elsewhere.new_page())
        sign_in(other, site, reader.email, reader.password)
        page = check.watch(here.new_page())
        page.goto(f"{site.url}/sign-in")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("Email").fill(reader.email)
        page.get_by_role("button", name="Send the link").click()
        expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
        check(page, "reset-asked", axe=False)
        page.goto(site.mailed_link(reader.email, "reset-password"))
        page.get_by_label("New password").fill(f"{PASSWORD} anew")
        page.get_by_role("button", name="Set the new password").click()
        expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
        check(page, "reset-done", axe=False)

        other.goto(f"{site.url}/account")
        expect(other).to_have_url(re.compile(r"/sign-in\?next=%2Faccount$"))
        sign_in(page, site, reader.email, f"{PASSWORD} anew")


def test_an_editor_adds_edits_meets_a_stale_form_and_imports(
    chromium: Browser, site: Site, check: Checker, tmp_path: Path
) -> None:
    editor = site.account(Role.EDITOR)
    with context(chromium) as browser:
        page = check.watch(browser.new_page())
        sign_in(page, site, editor.email, editor.password)
        page.get_by_role("link", name="Add a book").click()
        check(page, "book-new")
        page.locator("#field-title").fill("The Dispossessed")
        page.locator("#field-authors").fill("Ursula K. Le Guin")
        page.locator("#field-isbn").fill("978-0-00-000000-1")  # a wrong check digit
        page.get_by_role("button", name="Add the book").click()
        expect(page.locator("#error-isbn")).to_be_visible()
        check(page, "book-new-refused")
        page.locator("#field-isbn").fill("")
        page.locator("#field-published_date").fill("1974")
        page.get_by_role("button", name="Add the book").click()
        expect(page.get_by_role("heading", name="The Dispossessed")).to_be_visible()
        book_url = page.url

        second_tab = check.watch(browser.new_page())
        second_tab.goto(f"{book_url}/edit")
        page.get_by_role("link", name="Edit this book").click()
        check(page, "book-edit")
        page.locator("#field-subtitle").fill("An Ambiguous Utopia")
        page.get_by_role("button", name="Save the book").click()
        expect(page.get_by_text("An Ambiguous Utopia")).to_be_visible()

        second_tab.locator("#field-publisher").fill("Harper & Row")
        second_tab.get_by_role("button", name="Save the book").click()
        expect(
            second_tab.get_by_role("heading", name=re.compile("changed meanwhile"))
        ).to_be_visible()
        check(second_tab, "book-conflict")
        second_tab.get_by_role("button", name="Save my version over the current one").click()
        expect(second_tab.get_by_text("Harper & Row")).to_be_visible()

        upload = tmp_path / "books.ndjson"
        upload.write_text(
            json.dumps(book_payload(title="Imported in the browser"))
            + "\n{broken\n"
            + json.dumps(book_payload(title="Imported too"))
            + "\n"
        )
        page.get_by_role("link", name="Import").click()
        check(page, "import")
        page.get_by_label("File").set_input_files(str(upload))
        page.get_by_role("button", name="Import").click()
        expect(page.get_by_text("2 books added, 1 line not imported.")).to_be_visible()
        check(page, "import-report")


def test_an_admin_changes_a_role_meets_the_last_admin_refusal_and_deletes_a_book(
    chromium: Browser, site: Site, check: Checker
) -> None:
    admin = site.account(Role.ADMIN, "The Admin")
    reader = site.account(Role.READER, "A Reader")
    book = site.add_book(admin, title="To Be Deleted")
    with context(chromium) as browser, context(chromium) as readers:
        page = check.watch(browser.new_page())
        sign_in(page, site, admin.email, admin.password)
        page.get_by_role("link", name="Accounts").click()
        check(page, "accounts")
        page.get_by_label("Addresses starting with").fill(reader.email)
        page.get_by_role("button", name="Search").click()
        page.get_by_label(f"Role of {reader.email}").select_option("editor")
        page.get_by_role("button", name=f"Change the role of {reader.email}").click()
        expect(page.get_by_label(f"Role of {reader.email}")).to_have_value("editor")

        page.get_by_label("Addresses starting with").fill(admin.email)
        page.get_by_role("button", name="Search").click()
        page.get_by_label(f"Role of {admin.email}").select_option("reader")
        page.get_by_role("button", name=f"Change the role of {admin.email}").click()
        expect(page.get_by_role("alert")).to_contain_text("Admins cannot demote")
        check(page, "accounts-last-admin")

        page.goto(f"{site.url}/books/{book['id']}")
        page.get_by_role("link", name="Delete this book").click()
        check(page, "book-delete")
        page.get_by_role("button", name="Delete the book").click()
        expect(page.get_by_role("heading", name="Book deleted")).to_be_visible()
        page.goto(f"{site.url}/books/{book['id']}")
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        check(page, "error-404")

        other = check.watch(readers.new_page())
        sign_in(other, site, reader.email, reader.password)
        other.goto(f"{site.url}/admin/users")
        expect(other.get_by_role("heading", name="Not allowed")).to_be_visible()
        check(other, "error-403")


def test_the_other_pages_in_their_empty_and_error_states(
    chromium: Browser, site: Site, check: Checker
) -> None:
    """The states the flows above do not show, each checked as it is shown."""
    reader = site.account(Role.READER)
    with context(chromium) as browser:
        page = check.watch(browser.new_page())
        page.goto(f"{site.url}/")
        expect(page.get_by_text("The catalog is empty.")).to_be_visible()
        check(page, "home-empty")
        page.goto(f"{site.url}/?language=xx")
        check(page, "home-refused")
        page.goto(f"{site.url}/sign-in")
        page.get_by_label("Email").fill(reader.email)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_be_visible()
        check(page, "sign-in-refused")
        for path, name in (("/forgot-password", "forgot"), ("/resend-verification", "resend")):
            page.goto(f"{site.url}{path}")
            check(page, name)
            page.get_by_label("Email").fill("someone@localhost")  # the browser takes it
            page.get_by_role("button", name="Send the link").click()
            expect(page.locator("#error-email")).to_be_visible()
            check(page, f"{name}-refused")
        for path, name in (
            ("/verify-email", "verify-email-without-token"),
            ("/cancel-email-change?token=made-up", "cancel-email-change"),
            ("/reset-password?token=made-up", "reset-password"),
        ):
            page.goto(f"{site.url}{path}")
            check(page, name)
        page.get_by_label("New password").fill("a long enough passphrase")
        page.get_by_role("button", name="Set the new password").click()
        expect(page.get_by_role("heading", name="Bad request")).to_be_visible()
        check(page, "error-400-link")

        sign_in(page, site, reader.email, reader.password)
        page.goto(f"{site.url}/account")
        check(page, "account")
        page.locator("#field-password-current_password").fill("not the password")
        page.locator("#field-password-password").fill(f"{PASSWORD} again")
        page.get_by_role("button", name="Change the password").click()
        expect(page.locator("#error-password-current_password")).to_be_visible()
        check(page, "account-refused")
