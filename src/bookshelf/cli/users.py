"""``bookshelf users``: the accounts, and an admin's changes to them, from the command line.

Each change goes through the service the API's ``PATCH /users/{id}`` and the admin pages use
(``auth.accounts.update_user``), with the operator acting as nobody's account: the same rules
(at least one active admin remains) and the same effects (a deactivation signs the account
out everywhere).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bookshelf.auth import accounts
from bookshelf.cli.common import connection_to, email_or_exit, run_with_database, settings_or_exit
from bookshelf.cli.output import CursorOption, JsonOption, print_json, print_page, print_table
from bookshelf.users import service as users
from bookshelf.users.schemas import Role, User, UserAdminUpdate, UserPage

app = typer.Typer(
    help="List accounts; change one's role, access or verification.", no_args_is_help=True
)

HEADERS = ("email", "role", "active", "verified", "display name", "created")
EmailArgument = Annotated[str, typer.Argument(help="The account's email.")]


def _row(user: User) -> tuple[object, ...]:
    return (
        user.email,
        user.role.value,
        user.is_active,
        user.email_verified,
        user.display_name,
        user.created_at,
    )


@app.command("list")
def list_accounts(
    search: Annotated[
        str | None, typer.Option(help="Only accounts whose email starts with this.")
    ] = None,
    role: Annotated[Role | None, typer.Option(help="Only accounts with this role.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """The accounts, by email (a page of them: the next page's cursor is printed)."""
    settings = settings_or_exit()
    prefix = (search or "").strip().lower() or None

    async def run() -> UserPage:
        async with connection_to(settings, write=False) as connection:
            items, next_cursor = await users.list_users(
                connection, limit=limit, cursor=cursor, email_prefix=prefix, role=role
            )
        return UserPage(items=list(items), next_cursor=next_cursor)

    page = run_with_database(run(), settings)
    print_page(page, [_row(user) for user in page.items], HEADERS, json_output=json_output)


def _change(email: str, changes: UserAdminUpdate, json_output: bool) -> None:
    """Find the account at ``email`` and apply ``changes`` in one transaction; print it."""
    settings = settings_or_exit()
    normalised = email_or_exit(email, "EMAIL")

    async def run() -> User | None:
        async with connection_to(settings, write=True) as connection:
            account = await users.find_user_by_email(connection, normalised)
            if account is None:
                return None
            return await accounts.update_user(connection, None, account.id, changes)

    changed = run_with_database(run(), settings)
    if changed is None:
        print(f"bookshelf: no account has the email {normalised}", file=sys.stderr)
        raise typer.Exit(1)
    if json_output:
        print_json(changed.model_dump(mode="json"))
    else:
        print_table(HEADERS, [_row(changed)])


@app.command("set-role")
def set_role(
    email: EmailArgument,
    role: Annotated[Role, typer.Argument(help="The account's new role.")],
    json_output: JsonOption = False,
) -> None:
    """Give an account a role (the last active admin keeps theirs)."""
    _change(email, UserAdminUpdate(role=role), json_output)


@app.command()
def deactivate(email: EmailArgument, json_output: JsonOption = False) -> None:
    """Stop an account (not the last active admin's).

    It is signed out everywhere and its mailed links are void, as a deactivation through the
    API does; no sign-in until it is activated again."""
    _change(email, UserAdminUpdate(is_active=False), json_output)


@app.command()
def activate(email: EmailArgument, json_output: JsonOption = False) -> None:
    """Let a deactivated account sign in again."""
    _change(email, UserAdminUpdate(is_active=True), json_output)


@app.command()
def verify(email: EmailArgument, json_output: JsonOption = False) -> None:
    """Mark an account's email as verified, as if its owner had followed the mailed link."""
    _change(email, UserAdminUpdate(email_verified=True), json_output)
