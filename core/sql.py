"""The SQL seam shared by packages that keep rows in the gateway database (``tenancy.database.Database``
implements it over SQLite and PostgreSQL): statements written once with ``?`` placeholders."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, runtime_checkable


@runtime_checkable
class SqlDatabase(Protocol):
    kind: Literal["sqlite", "postgresql"]

    def sql(self, statement: str) -> str:
        """``statement`` with the driver's placeholders."""
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """A DB-API cursor inside one transaction (committed at the end, rolled back on an error)."""
        ...

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement in its own transaction; the rows it returns (if any)."""
        ...

    def apply_schema(self, statements: Sequence[str]) -> None:
        """Idempotent DDL, in one transaction."""
        ...
