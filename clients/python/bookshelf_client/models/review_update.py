from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ReviewUpdate")


@_attrs_define
class ReviewUpdate:
    """A merge patch: absent fields are unchanged, ``body: null`` removes the text.

    Attributes:
        body (None | str | Unset):
        rating (int | Unset): 1 (worst) to 5 (best).
    """

    body: None | str | Unset = UNSET
    rating: int | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        body: None | str | Unset
        if isinstance(self.body, Unset):
            body = UNSET
        else:
            body = self.body

        rating = self.rating

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if body is not UNSET:
            field_dict["body"] = body
        if rating is not UNSET:
            field_dict["rating"] = rating

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_body(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        body = _parse_body(d.pop("body", UNSET))

        rating = d.pop("rating", UNSET)

        review_update = cls(
            body=body,
            rating=rating,
        )

        return review_update
