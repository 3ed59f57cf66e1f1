from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Review")


@_attrs_define
class Review:
    """
    Attributes:
        author_name (None | str): The author's display name, if they set one.
        body (None | str):
        book_id (UUID):
        created_at (datetime.datetime):
        id (UUID):
        rating (int):
        updated_at (datetime.datetime):
        user_id (UUID): The author of the review.
    """

    author_name: None | str
    body: None | str
    book_id: UUID
    created_at: datetime.datetime
    id: UUID
    rating: int
    updated_at: datetime.datetime
    user_id: UUID
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        author_name: None | str
        author_name = self.author_name

        body: None | str
        body = self.body

        book_id = str(self.book_id)

        created_at = self.created_at.isoformat()

        id = str(self.id)

        rating = self.rating

        updated_at = self.updated_at.isoformat()

        user_id = str(self.user_id)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "author_name": author_name,
                "body": body,
                "book_id": book_id,
                "created_at": created_at,
                "id": id,
                "rating": rating,
                "updated_at": updated_at,
                "user_id": user_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_author_name(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        author_name = _parse_author_name(d.pop("author_name"))

        def _parse_body(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        body = _parse_body(d.pop("body"))

        book_id = UUID(d.pop("book_id"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = UUID(d.pop("id"))

        rating = d.pop("rating")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        user_id = UUID(d.pop("user_id"))

        review = cls(
            author_name=author_name,
            body=body,
            book_id=book_id,
            created_at=created_at,
            id=id,
            rating=rating,
            updated_at=updated_at,
            user_id=user_id,
        )

        review.additional_properties = d
        return review

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
