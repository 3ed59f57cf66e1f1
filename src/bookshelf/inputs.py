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
    branches = schema.pop("anyOf", None)
    not_null = (
        [branch for branch in branches if isinstance(branch, dict) and branch.get("type") != "null"]
        if isinstance(branches, list)
        else []
    )
    if len(not_null) != 1:
        raise TypeError(f"expected an optional field's anyOf, got {branches!r}")
    schema.pop("default", None)
    schema.update(not_null[0])
