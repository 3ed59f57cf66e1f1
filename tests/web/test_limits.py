"""The API's budgets apply to the pages: every page request counts against its address, the
forms that sign in, register, mail or take a link's token against the strict budget, and
sign-in attempts on one account against its own, from wherever they come."""

from __future__ import annotations

from bookshelf.config import Settings
from bookshelf.users.schemas import Role
from tests.factories import app_account
from tests.ops.support import random_address, started
from tests.web.support import Browser


def limited(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"rate_limit_enabled": True, **overrides})


async def test_pages_count_against_the_default_budget_of_their_address(
    settings: Settings,
) -> None:
    async with (
        started(limited(settings, rate_limit_default="3/minute")) as app,
        Browser(app, address=random_address()) as one,
        Browser(app, address=random_address()) as other,
    ):
        statuses = [(await one.get("/")).status_code for _ in range(4)]
        asset = await one.get(app.state.site.assets.url("bookshelf.css"))
        elsewhere = await other.get("/")
    assert statuses == [200, 200, 200, 429]
    assert asset.status_code == 200  # a page's files are not counted
    assert elsewhere.status_code == 200
    assert elsewhere.headers["ratelimit-limit"] == "3"


async def test_every_form_that_checks_a_password_or_mails_has_the_strict_budget(
    settings: Settings,
) -> None:
    posts = {
        "/sign-in": {"email": "a@example.org", "password": "wrong"},
        "/register": {"email": "not an address", "password": "x"},
        "/forgot-password": {"email": "a@example.org"},
        "/resend-verification": {"email": "a@example.org"},
        "/reset-password": {"token": "made-up", "new_password": "a long new passphrase"},
        "/verify-email": {"token": "made-up"},
        "/cancel-email-change": {"token": "made-up"},
    }
    for path, form in posts.items():
        async with (
            started(limited(settings, rate_limit_auth="1/minute")) as app,
            Browser(app, address=random_address()) as browser,
        ):
            await browser.get("/sign-in")
            first = await browser.post(path, form)
            second = await browser.post(path, form)
        assert first.status_code != 429, path
        assert first.headers["ratelimit-limit"] == "1", path
        assert second.status_code == 429, path
        assert "retry-after" in second.headers, path


async def test_sign_in_attempts_on_one_account_share_its_budget_across_addresses(
    settings: Settings,
) -> None:
    budget = limited(settings, rate_limit_sign_in_account="2/hour", rate_limit_auth="100/minute")
    async with started(budget) as app:
        account = await app_account(app, Role.READER)
        answers = []
        for _ in range(3):
            async with Browser(app, address=random_address()) as browser:
                await browser.get("/sign-in")
                answers.append(
                    await browser.post("/sign-in", {"email": account.email, "password": "wrong"})
                )
    assert [answer.status_code for answer in answers] == [400, 400, 429]
    assert "retry-after" in answers[2].headers
