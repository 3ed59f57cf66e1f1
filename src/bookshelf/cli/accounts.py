"""``create-admin``: an admin account from the command line (or an account promoted to one)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bookshelf.auth import service as auth_service
from bookshelf.auth.exceptions import EmailAlreadyRegistered
from bookshelf.auth.passwords import password_problems
from bookshelf.cli.common import email_or_exit, run_with_database, settings_or_exit
from bookshelf.db import migrate as migrations
from bookshelf.db.connections import opened_database
from bookshelf.db.database import unit_of_work
from bookshelf.main import build_auth
from bookshelf.users.schemas import Role


def _read_new_password() -> str:
    """From an interactive prompt (typed twice, hidden), or one line of piped stdin."""
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email (also the login).")],
    display_name: Annotated[str | None, typer.Option(help="Name shown on reviews.")] = None,
    promote: Annotated[
        bool,
        typer.Option(
            help="If the email already has an account, make it an admin: its password becomes "
            "the one given here and it is signed out everywhere."
        ),
    ] = False,
) -> None:
    """Create an admin (password from a prompt, or from stdin when piped).

    An email that already has an account is refused and nothing changes, unless --promote
    says to take that account over.
    """
    settings = settings_or_exit()
    normalised = email_or_exit(email, "--email")
    password = _read_new_password()
    problems = password_problems(password, email=normalised)
    if problems:
        print(f"bookshelf: password {'; '.join(problems)}", file=sys.stderr)
        raise typer.Exit(2)
    outcome: list[str] = []

    async def run() -> None:
        # Hashed before the transaction opens: no lock or connection is held through it.
        password_hash = await build_auth(settings).hasher.hash(password)
        async with opened_database(settings) as database:
            if settings.should_auto_migrate:
                await migrations.upgrade_database(settings)
            async with unit_of_work(database, write=True) as connection:
                if promote and await auth_service.promote_to_admin(
                    connection, email=normalised, password_hash=password_hash
                ):
                    outcome.append("promoted")
                    return
                try:
                    await auth_service.create_user(
                        connection,
                        email=normalised,
                        password_hash=password_hash,
                        display_name=display_name,
                        role=Role.ADMIN,
                        email_verified=True,
                    )
                except EmailAlreadyRegistered:
                    outcome.append("taken")
                    return
                outcome.append("created")

    run_with_database(run(), settings)
    if outcome[0] == "taken":
        print(
            f"bookshelf: {normalised} already has an account; nothing was changed (with "
            "--promote it becomes an admin with the password given here, signed out "
            "everywhere)",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    typer.echo(f"{normalised} is an admin ({outcome[0]})")
