"""API documentation: self-hosted Swagger UI and ReDoc, and a complete OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bookshelf import __version__
from bookshelf.main import create_app
from tests.conftest import make_settings

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BOOK = "/api/v1/books/{book_id}"
REVIEWS = "/api/v1/books/{book_id}/reviews"
REVIEW = "/api/v1/books/{book_id}/reviews/{review_id}"
# Every error each operation can answer with (beyond 500, which every operation can; 422 is
# declared everywhere: any parameter, header or body can be invalid). 401 where a token is
# needed, 403 where a role is needed too.
ERROR_STATUSES = {
    ("get", "/api/v1/books"): {"422"},
    ("post", "/api/v1/books"): {"400", "401", "403", "409", "413", "415", "422"},
    ("get", "/api/v1/books/export"): {"422"},
    ("post", "/api/v1/books/import"): {"400", "401", "403", "409", "413", "415", "422"},
    # 422: an If-None-Match / If-Match header longer than 1000 characters.
    ("get", BOOK): {"404", "422"},
    ("patch", BOOK): {"400", "401", "403", "404", "409", "412", "413", "415", "422"},
    ("delete", BOOK): {"401", "403", "404", "412", "422"},
    ("get", REVIEWS): {"404", "422"},
    ("post", REVIEWS): {"400", "401", "404", "409", "413", "415", "422"},
    ("get", REVIEW): {"404", "422"},
    ("patch", REVIEW): {"400", "401", "404", "413", "415", "422"},
    ("delete", REVIEW): {"401", "404", "422"},
    ("post", "/api/v1/auth/register"): {"400", "413", "415", "422"},
    ("post", "/api/v1/auth/verify-email"): {"400", "413", "415", "422"},
    ("post", "/api/v1/auth/verify-email/resend"): {"400", "413", "415", "422"},
    ("post", "/api/v1/auth/password-reset"): {"400", "413", "415", "422"},
    ("post", "/api/v1/auth/password-reset/confirm"): {"400", "413", "415", "422"},
    ("post", "/api/v1/auth/token"): {"400", "413", "422"},
    ("post", "/api/v1/auth/refresh"): {"400", "413", "415", "422"},
    ("post", "/api/v1/auth/logout"): {"401", "422"},
    ("post", "/api/v1/auth/logout-everywhere"): {"401", "422"},
    ("post", "/api/v1/auth/email-change/cancel"): {"400", "409", "413", "415", "422"},
    ("get", "/api/v1/users/me"): {"401", "422"},
    ("patch", "/api/v1/users/me"): {"400", "401", "403", "413", "415", "422"},
    ("get", "/api/v1/users"): {"401", "403", "422"},
    ("patch", "/api/v1/users/{user_id}"): {"400", "401", "403", "404", "409", "413", "415", "422"},
}
TAGS = ("books", "reviews", "auth", "users")
ASSET_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
SCRIPT_SOURCE = re.compile(r"""<script[^>]*\ssrc\s*=\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def app_without_database(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Docs and schema never touch the database, so no lifespan (and no backend) is needed.
    path: Path = tmp_path_factory.mktemp("docs") / "unused.db"
    return create_app(make_settings(f"sqlite+aiosqlite:///{path}"))


@pytest.fixture
async def docs_client(app_without_database: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_without_database)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def openapi(app_without_database: Any) -> dict[str, Any]:
    schema: dict[str, Any] = app_without_database.openapi()
    return schema


def iter_operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, path, operation


def iter_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from iter_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from iter_refs(value)


@pytest.mark.parametrize(
    ("page", "expected_assets"),
    [
        (
            "/docs",
            {
                "/docs-assets/swagger-ui.css",
                "/docs-assets/favicon.png",
                "/docs-assets/swagger-ui-bundle.js",
            },
        ),
        ("/redoc", {"/docs-assets/favicon.png", "/docs-assets/redoc.standalone.js"}),
    ],
)
async def test_docs_pages_load_assets_from_the_app_itself(
    docs_client: httpx.AsyncClient, page: str, expected_assets: set[str]
) -> None:
    response = await docs_client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert set(ASSET_REFERENCE.findall(html)) == expected_assets
    assert all(src.startswith("/docs-assets/") for src in SCRIPT_SOURCE.findall(html))
    assert SCRIPT_SOURCE.findall(html)
    lowered = html.lower()
    assert "cdn" not in lowered
    assert "http://" not in lowered
    assert "https://" not in lowered
    assert "fonts.googleapis" not in lowered
    assert "/openapi.json" in html


@pytest.mark.parametrize(
    ("asset", "content_types", "marker"),
    [
        (
            "/docs-assets/swagger-ui-bundle.js",
            {"text/javascript", "application/javascript"},
            b"SwaggerUIBundle",
        ),
        ("/docs-assets/swagger-ui.css", {"text/css"}, b".swagger-ui"),
        (
            "/docs-assets/redoc.standalone.js",
            {"text/javascript", "application/javascript"},
            b"Redoc",
        ),
        ("/docs-assets/favicon.png", {"image/png"}, b"\x89PNG\r\n\x1a\n"),
    ],
)
async def test_docs_assets_are_served_with_their_content_type(
    docs_client: httpx.AsyncClient, asset: str, content_types: set[str], marker: bytes
) -> None:
    response = await docs_client.get(asset)

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in content_types
    assert marker in response.content[:2_000_000]
    assert int(response.headers["content-length"]) == len(response.content)


async def test_missing_docs_asset_is_a_404_problem(docs_client: httpx.AsyncClient) -> None:
    response = await docs_client.get("/docs-assets/nope.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_docs_behind_a_path_prefix_point_at_prefixed_assets(
    app_without_database: Any,
) -> None:
    transport = httpx.ASGITransport(app=app_without_database, root_path="/bookshelf")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        swagger = await client.get("/docs")
        redoc = await client.get("/redoc")

    assert "/bookshelf/docs-assets/swagger-ui-bundle.js" in swagger.text
    assert "'/bookshelf/openapi.json'" in swagger.text
    assert "/bookshelf/docs-assets/redoc.standalone.js" in redoc.text
    assert '"/bookshelf/openapi.json"' in redoc.text


async def test_oauth2_redirect_page_is_served(docs_client: httpx.AsyncClient) -> None:
    response = await docs_client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "swaggerUIRedirectOauth2" in response.text


async def test_openapi_json_is_served(
    docs_client: httpx.AsyncClient, openapi: dict[str, Any]
) -> None:
    response = await docs_client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi


def test_openapi_info_describes_the_service(openapi: dict[str, Any]) -> None:
    info = openapi["info"]
    assert openapi["openapi"].startswith("3.1")
    assert info["title"] == "Bookshelf"
    assert info["version"] == __version__
    assert "keyset-paginated" in info["description"]
    assert info["contact"] == {
        "name": "Bookshelf maintainers",
        "url": "https://bookshelf.invalid/support",
    }
    assert info["license"] == {"name": "MIT", "identifier": "MIT"}
    assert [tag["name"] for tag in openapi["tags"]] == list(TAGS)
    assert all(tag["description"] for tag in openapi["tags"])


def expected_tag(path: str) -> str:
    if "/reviews" in path:
        return "reviews"
    return path.split("/")[3]


def test_openapi_lists_every_operation_under_its_tag(openapi: dict[str, Any]) -> None:
    operations = {(method, path) for method, path, _ in iter_operations(openapi)}
    assert operations == set(ERROR_STATUSES)
    for _, path, operation in iter_operations(openapi):
        assert operation["tags"] == [expected_tag(path)], path
        assert operation["description"]


def test_protected_operations_declare_the_bearer_scheme(openapi: dict[str, Any]) -> None:
    assert openapi["components"]["securitySchemes"] == {
        "OAuth2PasswordBearer": {
            "type": "oauth2",
            "flows": {"password": {"scopes": {}, "tokenUrl": "/api/v1/auth/token"}},
        }
    }
    for method, path, operation in iter_operations(openapi):
        protected = "401" in ERROR_STATUSES[(method, path)]
        expected = [{"OAuth2PasswordBearer": []}] if protected else None
        assert operation.get("security") == expected, f"{method.upper()} {path}"


@pytest.mark.parametrize(("method", "path"), sorted(ERROR_STATUSES))
def test_every_operation_declares_its_errors_as_problem_documents(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    responses = openapi["paths"][path][method]["responses"]
    errors = {status for status in responses if status[0] in "45"}

    # Every operation can also be rate-limited (429), lose its database or time out (503).
    assert errors == ERROR_STATUSES[(method, path)] | {"429", "500", "503"}
    for status in sorted(errors):
        content = responses[status].get("content")
        assert content == {"application/problem+json": {"schema": PROBLEM_REF}}, (
            f"{method.upper()} {path} {status}: {content}"
        )


def test_every_schema_reference_resolves(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    dangling = sorted(
        ref
        for ref in set(iter_refs(openapi))
        if ref.removeprefix("#/components/schemas/") not in schemas
    )
    assert dangling == []


def test_problem_schema_has_the_rfc_9457_members(openapi: dict[str, Any]) -> None:
    problem = openapi["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert set(problem["properties"]) >= {"type", "title", "status", "detail", "instance", "errors"}
    assert "FieldError" in openapi["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "header"),
    [("get", "If-None-Match"), ("delete", "If-Match"), ("patch", "If-Match")],
)
async def test_overlong_precondition_header_is_a_422_problem(
    client: httpx.AsyncClient, method: str, header: str
) -> None:
    """What the 422 declared for these operations must describe."""
    response = await client.request(
        method.upper(),
        "/api/v1/books/00000000-0000-4000-8000-000000000000",
        headers={header: '"1",' * 400},
        json={} if method == "patch" else None,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:bookshelf:problem:validation-error"
