"""Errors of mail delivery."""

from __future__ import annotations


class DeliveryFailed(Exception):
    """A send failed. ``permanent``: retrying cannot help (the server refused the recipient
    or the message for good), so the message is dead at once."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent
