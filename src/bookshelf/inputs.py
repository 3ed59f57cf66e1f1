"""Helpers for input schemas, so the OpenAPI document says exactly what validation accepts.

Contract fuzzers (and client generators) trust the schema: a value it allows must not be refused,
and a value it forbids must not be accepted.
"""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator
from pydantic.config import JsonDict


def _integral_float_to_int(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer (JSON has one number type), but strict int validation
    # refuses a float; strict stays, so "3" and true are still refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Put after the Field in an ``Annotated[int, Field(strict=True, ...), WholeNumber]``.
WholeNumber = BeforeValidator(_integral_float_to_int)


def absent_or_not_null(schema: JsonDict) -> None:
    """``json_schema_extra`` of a merge-patch field that may be left out but not set to null.

    The field is typed ``X | None = None`` so that absence can be told apart (``exclude_unset``),
    but a model validator refuses an explicit null; the schema drops the null branch to match.
    """
    branches = schema.pop("anyOf")
    assert isinstance(branches, list)  # noqa: S101 - the shape pydantic gives an optional field
    (branch,) = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
    assert isinstance(branch, dict)  # noqa: S101
    schema.pop("default", None)
    schema.update(branch)
