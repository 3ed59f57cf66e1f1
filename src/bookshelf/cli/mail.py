"""``bookshelf mail``: the outbox's undelivered messages, and sending a dead one again.

Never a message's body: it holds a link, and the link a token (``mail.backlog``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import BaseModel

from bookshelf.cli.common import connection_to, run_with_database, settings_or_exit
from bookshelf.cli.output import CursorOption, JsonOption, print_json, print_page, print_table
from bookshelf.mail import backlog
from bookshelf.mail.backlog import OutboxMessage

app = typer.Typer(
    help="The mail outbox: undelivered messages; send a dead one again.", no_args_is_help=True
)

HEADERS = ("id", "status", "kind", "recipient", "attempts", "created", "died", "last error")


class OutboxPage(BaseModel):
    items: list[OutboxMessage]
    next_cursor: str | None


def _row(message: OutboxMessage) -> tuple[object, ...]:
    return (
        message.id,
        message.status,
        message.kind,
        message.recipient,
        message.attempts,
        message.created_at,
        message.dead_at,
        message.last_error,
    )


@app.command("list")
def list_messages(
    dead: Annotated[
        bool, typer.Option("--dead", help="Only the dead messages (attempts spent or refused).")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """The messages not delivered yet (pending, being sent, dead), oldest first; never their
    bodies."""
    settings = settings_or_exit()

    async def run() -> OutboxPage:
        async with connection_to(settings, write=False) as connection:
            items, next_cursor = await backlog.list_undelivered(
                connection, limit=limit, cursor=cursor, dead_only=dead
            )
        return OutboxPage(items=list(items), next_cursor=next_cursor)

    page = run_with_database(run(), settings)
    print_page(page, [_row(message) for message in page.items], HEADERS, json_output=json_output)


@app.command()
def retry(
    message_id: Annotated[str, typer.Argument(metavar="ID", help="The dead message's id.")],
    json_output: JsonOption = False,
) -> None:
    """Send a dead message again: pending at once, its attempts counted anew (fix the cause
    first: the SMTP settings, the recipient)."""
    settings = settings_or_exit()

    async def run() -> OutboxMessage:
        async with connection_to(settings, write=True) as connection:
            return await backlog.retry_dead(connection, message_id)

    message = run_with_database(run(), settings)
    if json_output:
        print_json(message.model_dump(mode="json"))
    else:
        print_table(HEADERS, [_row(message)])
