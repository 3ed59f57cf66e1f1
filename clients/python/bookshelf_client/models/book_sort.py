from enum import StrEnum


class BookSort(StrEnum):
    CREATED_AT = "created_at"
    PUBLISHED_DATE = "published_date"
    RELEVANCE = "relevance"
    TITLE = "title"
    VALUE_1 = "-title"
    VALUE_3 = "-published_date"
    VALUE_5 = "-created_at"

    def __str__(self) -> str:
        return str(self.value)
