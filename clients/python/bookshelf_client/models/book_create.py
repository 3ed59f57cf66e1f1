from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.language_code import LanguageCode
from ..types import UNSET, Unset

T = TypeVar("T", bound="BookCreate")


@_attrs_define
class BookCreate:
    """A new book.

    Attributes:
        authors (list[str]):
        title (str):
        description (None | str | Unset):
        isbn (None | str | Unset):
        language (LanguageCode | None | Unset):
        page_count (int | None | Unset):
        published_date (None | str | Unset):
        publisher (None | str | Unset):
        subjects (list[str] | Unset):
        subtitle (None | str | Unset):
    """

    authors: list[str]
    title: str
    description: None | str | Unset = UNSET
    isbn: None | str | Unset = UNSET
    language: LanguageCode | None | Unset = UNSET
    page_count: int | None | Unset = UNSET
    published_date: None | str | Unset = UNSET
    publisher: None | str | Unset = UNSET
    subjects: list[str] | Unset = UNSET
    subtitle: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        authors = self.authors

        title = self.title

        description: None | str | Unset
        if isinstance(self.description, Unset):
            description = UNSET
        else:
            description = self.description

        isbn: None | str | Unset
        if isinstance(self.isbn, Unset):
            isbn = UNSET
        else:
            isbn = self.isbn

        language: None | str | Unset
        if isinstance(self.language, Unset):
            language = UNSET
        elif isinstance(self.language, LanguageCode):
            language = self.language.value
        else:
            language = self.language

        page_count: int | None | Unset
        if isinstance(self.page_count, Unset):
            page_count = UNSET
        else:
            page_count = self.page_count

        published_date: None | str | Unset
        if isinstance(self.published_date, Unset):
            published_date = UNSET
        else:
            published_date = self.published_date

        publisher: None | str | Unset
        if isinstance(self.publisher, Unset):
            publisher = UNSET
        else:
            publisher = self.publisher

        subjects: list[str] | Unset = UNSET
        if not isinstance(self.subjects, Unset):
            subjects = self.subjects

        subtitle: None | str | Unset
        if isinstance(self.subtitle, Unset):
            subtitle = UNSET
        else:
            subtitle = self.subtitle

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "authors": authors,
                "title": title,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description
        if isbn is not UNSET:
            field_dict["isbn"] = isbn
        if language is not UNSET:
            field_dict["language"] = language
        if page_count is not UNSET:
            field_dict["page_count"] = page_count
        if published_date is not UNSET:
            field_dict["published_date"] = published_date
        if publisher is not UNSET:
            field_dict["publisher"] = publisher
        if subjects is not UNSET:
            field_dict["subjects"] = subjects
        if subtitle is not UNSET:
            field_dict["subtitle"] = subtitle

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        authors = cast(list[str], d.pop("authors"))

        title = d.pop("title")

        def _parse_description(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        description = _parse_description(d.pop("description", UNSET))

        def _parse_isbn(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        isbn = _parse_isbn(d.pop("isbn", UNSET))

        def _parse_language(data: object) -> LanguageCode | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                language_type_0 = LanguageCode(data)

                return language_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LanguageCode | None | Unset, data)

        language = _parse_language(d.pop("language", UNSET))

        def _parse_page_count(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        page_count = _parse_page_count(d.pop("page_count", UNSET))

        def _parse_published_date(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        published_date = _parse_published_date(d.pop("published_date", UNSET))

        def _parse_publisher(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        publisher = _parse_publisher(d.pop("publisher", UNSET))

        subjects = cast(list[str], d.pop("subjects", UNSET))

        def _parse_subtitle(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        subtitle = _parse_subtitle(d.pop("subtitle", UNSET))

        book_create = cls(
            authors=authors,
            title=title,
            description=description,
            isbn=isbn,
            language=language,
            page_count=page_count,
            published_date=published_date,
            publisher=publisher,
            subjects=subjects,
            subtitle=subtitle,
        )

        return book_create
