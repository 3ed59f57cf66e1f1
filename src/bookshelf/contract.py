"""The published HTTP contract: ``openapi.json`` at the repository root, and what counts as
breaking it.

``python3 dev.py openapi`` rewrites the file from the app (stable formatting: sorted keys, two
spaces, UTF-8), but refuses when the change breaks clients that were built on the file and the
major part of ``info.version`` was not raised. A test fails whenever the file and the app
differ, so the file is always the contract the code serves.

Breaking, for a client built on the old schema: a removed operation, a removed response status,
a removed response property, a new required parameter or body property, a parameter or body
property whose type or enum got narrower. Everything else (new operations, new optional inputs,
new response properties, wider types) is compatible.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bookshelf.config import Environment, Settings
from bookshelf.main import create_app

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "openapi.json"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

Schema = dict[str, Any]


def current_schema() -> Schema:
    """The schema the app serves (it does not depend on settings that vary by deployment)."""
    schema: Schema = create_app(Settings(environment=Environment.TEST)).openapi()
    return schema


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _resolve(schema: Schema, node: Any) -> Any:
    """``node`` with a top-level ``$ref`` followed (repeatedly) within ``schema``."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _types(schema: Schema, node: Any) -> set[str]:
    """The JSON types a schema node admits (``anyOf``/``oneOf`` unioned); empty = anything."""
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return set()
    if "anyOf" in node or "oneOf" in node:
        found: set[str] = set()
        for option in node.get("anyOf", []) + node.get("oneOf", []):
            types = _types(schema, option)
            if not types:
                return set()
            found |= types
        return found
    declared = node.get("type")
    if declared is None:
        return set()
    types = {declared} if isinstance(declared, str) else set(declared)
    # An integer is a number: number -> integer narrows, integer -> number widens.
    return types | ({"integer"} if "number" in types else set())


def _narrowed(old_schema: Schema, old: Any, new_schema: Schema, new: Any) -> str | None:
    """Why an input's accepted values got fewer (None when they did not)."""
    old, new = _resolve(old_schema, old), _resolve(new_schema, new)
    old_types, new_types = _types(old_schema, old), _types(new_schema, new)
    if new_types and (not old_types or not old_types <= new_types):
        return f"type {sorted(old_types) or 'any'} -> {sorted(new_types)}"
    old_enum, new_enum = _enum(old_schema, old), _enum(new_schema, new)
    if new_enum is not None and (old_enum is None or not old_enum <= new_enum):
        return "enum narrowed"
    return None


def _enum(schema: Schema, node: Any) -> set[Any] | None:
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return None
    if "enum" in node:
        return {json.dumps(value) for value in node["enum"]}
    options = node.get("anyOf", []) + node.get("oneOf", [])
    values: set[Any] = set()
    for option in options:
        if isinstance(option, dict) and option.get("type") == "null":
            values.add("null")
            continue
        inner = _enum(schema, option)
        if inner is None:
            return None
        values |= inner
    return values if options else None


def _operations(schema: Schema) -> dict[tuple[str, str], Schema]:
    return {
        (method, path): operation
        for path, item in schema.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    }


def _body_schema(schema: Schema, operation: Schema) -> Schema | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        resolved = _resolve(schema, media.get("schema", {}))
        return resolved if isinstance(resolved, dict) else None
    return None


def _response_properties(schema: Schema, operation: Schema) -> dict[str, set[str]]:
    found = {}
    for status, response in operation.get("responses", {}).items():
        response = _resolve(schema, response)
        for media in response.get("content", {}).values():
            node = _resolve(schema, media.get("schema", {}))
            if isinstance(node, dict) and "properties" in node:
                found[status] = set(node["properties"])
    return found


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """What in ``new`` breaks a client built on ``old`` (an empty list: compatible)."""
    changes: list[str] = []
    new_operations = _operations(new)
    for key, old_op in _operations(old).items():
        where = f"{key[0].upper()} {key[1]}"
        new_op = new_operations.get(key)
        if new_op is None:
            changes.append(f"{where}: operation removed")
            continue
        for status in set(old_op.get("responses", {})) - set(new_op.get("responses", {})):
            changes.append(f"{where}: response {status} removed")
        new_props = _response_properties(new, new_op)
        for status, properties in _response_properties(old, old_op).items():
            for name in sorted(properties - new_props.get(status, properties)):
                changes.append(f"{where}: response {status} property {name!r} removed")
        old_params = {(p["in"], p["name"]): p for p in old_op.get("parameters", [])}
        for param in new_op.get("parameters", []):
            name = f"{param['in']} parameter {param['name']!r}"
            before = old_params.get((param["in"], param["name"]))
            if before is None:
                if param.get("required"):
                    changes.append(f"{where}: new required {name}")
                continue
            if param.get("required") and not before.get("required"):
                changes.append(f"{where}: {name} became required")
            why = _narrowed(old, before.get("schema"), new, param.get("schema"))
            if why:
                changes.append(f"{where}: {name} {why}")
        changes += _body_changes(where, old, _body_schema(old, old_op), new, new_op)
    return changes


def _body_changes(
    where: str, old: Schema, old_body: Schema | None, new: Schema, new_op: Schema
) -> list[str]:
    new_body = _body_schema(new, new_op)
    if new_body is None:
        return []
    if old_body is None:
        return (
            [f"{where}: a request body is now required"]
            if new_op["requestBody"].get("required")
            else []
        )
    changes = []
    old_required, old_props = set(old_body.get("required", [])), old_body.get("properties", {})
    for name in sorted(set(new_body.get("required", [])) - old_required):
        changes.append(f"{where}: body property {name!r} became required")
    for name, node in new_body.get("properties", {}).items():
        if name in old_props:
            why = _narrowed(old, old_props[name], new, node)
            if why:
                changes.append(f"{where}: body property {name!r} {why}")
    return changes


def _major(schema: Schema) -> int:
    return int(str(schema.get("info", {}).get("version", "0")).split(".")[0])


def write(path: Path = SCHEMA_FILE) -> int:
    """Rewrite ``path`` from the app; refuse (exit status 1) a breaking change whose major
    version was not raised."""
    new = current_schema()
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        changes = breaking_changes(old, new)
        if changes and _major(new) <= _major(old):
            listed = "".join(f"  - {change}\n" for change in changes)
            sys.stderr.write(
                "openapi.json: breaking changes without a new major version:\n"
                f"{listed}Raise the major part of bookshelf.__version__, or keep the contract.\n"
            )
            return 1
    path.write_text(render(new), encoding="utf-8")
    sys.stdout.write(f"wrote {path.name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(write())
