from enum import StrEnum


class ImportLineResultStatus(StrEnum):
    CREATED = "created"
    ERROR = "error"

    def __str__(self) -> str:
        return str(self.value)
