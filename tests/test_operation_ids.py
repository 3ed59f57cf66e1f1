"""Every operation has a stable, readable id: its route function's name, unique in the schema,
so generated clients get methods such as ``list_books`` and ``create_book``."""

from __future__ import annotations

import re

from fastapi import FastAPI

from bookshelf.config import Settings
from bookshelf.main import create_app


def _operations(app: FastAPI) -> list[tuple[str, str, str]]:
    return [
        (method, path, operation["operationId"])
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def test_operation_ids_are_unique_snake_case_names() -> None:
    operations = _operations(create_app(Settings(environment="test")))  # type: ignore[arg-type]
    ids = [operation_id for _, _, operation_id in operations]
    assert len(ids) == len(set(ids)), sorted(ids)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", operation_id) for operation_id in ids), ids


def test_each_operation_is_named_after_its_route_function() -> None:
    """The whole list: renaming a route function renames a client method, so it shows here."""
    assert {
        (method, path): op_id for method, path, op_id in _operations(create_app(Settings()))
    } == {
        ("get", "/api/v1/books"): "list_books",
        ("post", "/api/v1/books"): "create_book",
        ("get", "/api/v1/books/export"): "export_books",
        ("post", "/api/v1/books/import"): "import_books",
        ("get", "/api/v1/books/{book_id}"): "get_book",
        ("patch", "/api/v1/books/{book_id}"): "update_book",
        ("delete", "/api/v1/books/{book_id}"): "delete_book",
        ("get", "/api/v1/books/{book_id}/reviews"): "list_reviews",
        ("post", "/api/v1/books/{book_id}/reviews"): "create_review",
        ("get", "/api/v1/books/{book_id}/reviews/{review_id}"): "get_review",
        ("patch", "/api/v1/books/{book_id}/reviews/{review_id}"): "update_review",
        ("delete", "/api/v1/books/{book_id}/reviews/{review_id}"): "delete_review",
        ("post", "/api/v1/auth/register"): "register",
        ("post", "/api/v1/auth/token"): "issue_token",
        ("post", "/api/v1/auth/refresh"): "refresh",
        ("post", "/api/v1/auth/logout"): "logout",
        ("post", "/api/v1/auth/logout-everywhere"): "logout_everywhere",
        ("post", "/api/v1/auth/email-change/cancel"): "cancel_email_change",
        ("post", "/api/v1/auth/verify-email"): "verify_email",
        ("post", "/api/v1/auth/verify-email/resend"): "resend_verification",
        ("post", "/api/v1/auth/password-reset"): "request_password_reset",
        ("post", "/api/v1/auth/password-reset/confirm"): "confirm_password_reset",
        ("get", "/api/v1/users/me"): "read_me",
        ("patch", "/api/v1/users/me"): "update_me",
        ("get", "/api/v1/users"): "list_users",
        ("patch", "/api/v1/users/{user_id}"): "update_user",
    }
