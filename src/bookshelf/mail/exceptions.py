"""Errors of mail delivery."""

from __future__ import annotations

from bookshelf.exceptions import Conflict, NotFound


class DeliveryFailed(Exception):
    """A send failed. ``permanent``: retrying cannot help (the server refused the recipient
    or the message for good), so the message is dead at once."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


# The outbox's refusals are the command line's (``bookshelf mail``): no API answers with them,
# so they have no problem type of their own (docs/api.md lists the API's).


class MessageNotFound(NotFound):
    title = "Message not found"

    def __init__(self, message_id: str) -> None:
        super().__init__(f"No message in the outbox has the id {message_id!r}.")


class MessageNotDead(Conflict):
    title = "Message not dead"

    def __init__(self, message_id: str, status: str) -> None:
        super().__init__(
            f"Message {message_id} is {status}, not dead: only a dead message is sent again "
            "on demand (the worker retries the others by itself)."
        )


class MessageBodyGone(Conflict):
    title = "Message body gone"

    def __init__(self, message_id: str) -> None:
        super().__init__(
            f"Message {message_id} died before dead messages kept their body: there is "
            "nothing to send (the recipient can ask for a new link)."
        )
