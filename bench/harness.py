"""What the parts that live in their own modules need of the bench (``bench.__main__.Bench``):
its options, wrk, and Bookshelf started and measured as every part does it."""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Types only: the report imports the parts' modules for their verdicts.
    from bench.dataset import BenchDatabase
    from bench.report import Row
    from bench.servers import Server


class Harness(Protocol):
    options: argparse.Namespace
    wrk: str

    def bookshelf_env(self, database: BenchDatabase) -> dict[str, str]: ...

    def bookshelf(
        self,
        database: BenchDatabase,
        label: str = ...,
        overrides: dict[str, str] | None = ...,
    ) -> AbstractContextManager[Server]: ...

    def measure(
        self, server: Server, script: str, case: str, connections: int | None = None
    ) -> Row: ...
