from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Book")


@_attrs_define
class Book:
    """A book in the catalog.

    Attributes:
        authors (list[str]):
        created_at (datetime.datetime):
        created_by (None | UUID): The editor who added the book.
        description (None | str):
        id (UUID):
        isbn (None | str): ISBN-13.
        language (None | str):
        page_count (int | None):
        published_date (None | str):
        publisher (None | str):
        rating_average (float | None): Mean review rating (1-5), 2 decimals.
        rating_count (int): Number of reviews.
        subjects (list[str]):
        subtitle (None | str):
        title (str):
        updated_at (datetime.datetime):
        updated_by (None | UUID): The editor who last changed the book.
        version (int): Increases on every change (reviews included); the ETag is this, quoted.
    """

    authors: list[str]
    created_at: datetime.datetime
    created_by: None | UUID
    description: None | str
    id: UUID
    isbn: None | str
    language: None | str
    page_count: int | None
    published_date: None | str
    publisher: None | str
    rating_average: float | None
    rating_count: int
    subjects: list[str]
    subtitle: None | str
    title: str
    updated_at: datetime.datetime
    updated_by: None | UUID
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        authors = self.authors

        created_at = self.created_at.isoformat()

        created_by: None | str
        if isinstance(self.created_by, UUID):
            created_by = str(self.created_by)
        else:
            created_by = self.created_by

        description: None | str
        description = self.description

        id = str(self.id)

        isbn: None | str
        isbn = self.isbn

        language: None | str
        language = self.language

        page_count: int | None
        page_count = self.page_count

        published_date: None | str
        published_date = self.published_date

        publisher: None | str
        publisher = self.publisher

        rating_average: float | None
        rating_average = self.rating_average

        rating_count = self.rating_count

        subjects = self.subjects

        subtitle: None | str
        subtitle = self.subtitle

        title = self.title

        updated_at = self.updated_at.isoformat()

        updated_by: None | str
        if isinstance(self.updated_by, UUID):
            updated_by = str(self.updated_by)
        else:
            updated_by = self.updated_by

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "authors": authors,
                "created_at": created_at,
                "created_by": created_by,
                "description": description,
                "id": id,
                "isbn": isbn,
                "language": language,
                "page_count": page_count,
                "published_date": published_date,
                "publisher": publisher,
                "rating_average": rating_average,
                "rating_count": rating_count,
                "subjects": subjects,
                "subtitle": subtitle,
                "title": title,
                "updated_at": updated_at,
                "updated_by": updated_by,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        authors = cast(list[str], d.pop("authors"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_created_by(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                created_by_type_0 = UUID(data)

                return created_by_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        created_by = _parse_created_by(d.pop("created_by"))

        def _parse_description(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        description = _parse_description(d.pop("description"))

        id = UUID(d.pop("id"))

        def _parse_isbn(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        isbn = _parse_isbn(d.pop("isbn"))

        def _parse_language(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        language = _parse_language(d.pop("language"))

        def _parse_page_count(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        page_count = _parse_page_count(d.pop("page_count"))

        def _parse_published_date(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        published_date = _parse_published_date(d.pop("published_date"))

        def _parse_publisher(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        publisher = _parse_publisher(d.pop("publisher"))

        def _parse_rating_average(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        rating_average = _parse_rating_average(d.pop("rating_average"))

        rating_count = d.pop("rating_count")

        subjects = cast(list[str], d.pop("subjects"))

        def _parse_subtitle(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        subtitle = _parse_subtitle(d.pop("subtitle"))

        title = d.pop("title")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_updated_by(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                updated_by_type_0 = UUID(data)

                return updated_by_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        updated_by = _parse_updated_by(d.pop("updated_by"))

        version = d.pop("version")

        book = cls(
            authors=authors,
            created_at=created_at,
            created_by=created_by,
            description=description,
            id=id,
            isbn=isbn,
            language=language,
            page_count=page_count,
            published_date=published_date,
            publisher=publisher,
            rating_average=rating_average,
            rating_count=rating_count,
            subjects=subjects,
            subtitle=subtitle,
            title=title,
            updated_at=updated_at,
            updated_by=updated_by,
            version=version,
        )

        book.additional_properties = d
        return book

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
