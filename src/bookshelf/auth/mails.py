"""The text of the mails accounts receive. Plain text only: each link carries its token as the
``token=`` query parameter of a page on ``BOOKSHELF_PUBLIC_URL``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class Mail:
    kind: str
    subject: str
    body: str


def link(public_url: str, page: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/{page}?{urlencode({'token': token})}"


def verify_address(public_url: str, token: str, hours: int, *, required: bool) -> Mail:
    url = link(public_url, "verify-email", token)
    when = (
        "Signing in works once the address is confirmed: until then it is refused as if the "
        "password were wrong."
        if required
        else "You can sign in meanwhile, but some things wait for the confirmation."
    )
    return Mail(
        "verify-email",
        "Confirm your email address for Bookshelf",
        f"Welcome to Bookshelf.\n\nConfirm that this address is yours by opening this link "
        f"(valid for {hours} hours), then sign in with the password you chose:\n\n{url}\n\n"
        f"{when} If the link has expired, ask for a new one with this address.\n\n"
        "If you did not create an account, ignore this mail: nothing happens without the link.\n",
    )


def already_registered(public_url: str) -> Mail:
    return Mail(
        "already-registered",
        "Someone tried to register with your address",
        "Someone (perhaps you) tried to create a Bookshelf account with this address, which "
        "already has one. No new account was made.\n\nIf you forgot your password, ask for a "
        f"reset at {public_url.rstrip('/')}/reset-password.\n"
        "If it was not you, ignore this mail.\n",
    )


def reset_password(public_url: str, token: str, minutes: int) -> Mail:
    url = link(public_url, "reset-password", token)
    return Mail(
        "reset-password",
        "Reset your Bookshelf password",
        "Someone (perhaps you) asked to reset the password of the Bookshelf account with this "
        f"address. Choose a new password with this link (valid for {minutes} minutes):\n\n"
        f"{url}\n\nSetting a new password signs the account out everywhere. If you did not ask "
        "for this, ignore this mail: your password stays as it is.\n",
    )


def confirm_new_address(public_url: str, token: str, hours: int) -> Mail:
    url = link(public_url, "verify-email", token)
    return Mail(
        "change-email",
        "Confirm your new email address for Bookshelf",
        "Someone (perhaps you) asked to make this the address of a Bookshelf account. Confirm "
        f"with this link (valid for {hours} hours):\n\n{url}\n\n"
        "If you did not ask for this, ignore this mail: nothing changes without the link.\n",
    )


def address_change_requested(public_url: str, new_email: str, token: str, hours: int) -> Mail:
    url = link(public_url, "cancel-email-change", token)
    return Mail(
        "email-change-notice",
        "Your Bookshelf address is being changed",
        f"Someone signed in to your Bookshelf account asked to change its address to "
        f"{new_email}. The change happens only when the link sent there is opened.\n\n"
        f"If this was not you, cancel it with this link (it works for {hours} hours, even "
        f"after the change was confirmed):\n\n{url}\n\n"
        "Cancelling keeps (or brings back) this address, signs the account out everywhere "
        "and sends you a link to choose a new password: whoever asked knew the current one.\n",
    )


def email_change_cancelled(public_url: str, token: str, minutes: int) -> Mail:
    url = link(public_url, "reset-password", token)
    return Mail(
        "email-change-cancelled",
        "Your Bookshelf address change was cancelled",
        "The change of your Bookshelf account's address was cancelled: the account keeps this "
        "address and has been signed out everywhere.\n\nWhoever asked for the change knew "
        f"your password. Choose a new one now with this link (valid for {minutes} minutes):"
        f"\n\n{url}\n",
    )
