"""Dependencies of the accounts feature."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends

from bookshelf.api import uuid_or_not_found
from bookshelf.users.exceptions import UserNotFound


async def parse_user_id(user_id: str) -> UUID:
    return uuid_or_not_found(user_id, UserNotFound)


UserId = Annotated[UUID, Depends(parse_user_id)]
