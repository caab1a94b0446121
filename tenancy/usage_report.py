"""Usage reports: the ledger's rows summed per model, key, day or project over a time range.

``project`` is a required argument: a caller's own project, or None for every project, which only an
admin may ask for (the HTTP API passes the caller's project; the CLI runs with the database's rights).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.errors import InvalidRequestError
from tenancy.database import Database
from tenancy.usage_schema import USAGE_SCHEMA

GroupBy = Literal["model", "key", "day", "project"]
GROUP_BY: tuple[GroupBy, ...] = ("model", "key", "day", "project")

# Fixed expressions, chosen from `by`: nothing a caller sends reaches the SQL text.
_DAY = {
    "sqlite": "strftime('%Y-%m-%d', started_at, 'unixepoch')",
    "postgresql": "to_char(to_timestamp(started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
_COLUMN = {"model": "model", "key": "key_id", "project": "project"}


@dataclass(frozen=True, slots=True)
class UsageSummary:
    group: str  # the model id, key id, day (YYYY-MM-DD, UTC) or project
    requests: int
    prompt_tokens: int
    completion_tokens: int
    streamed: int
    interrupted: int
    errors: int  # requests answered with a status >= 400

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}


def usage_report(
    database: Database,
    project: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    by: GroupBy = "model",
) -> list[UsageSummary]:
    """Sums per group of the requests that started in ``[since, until)``, ordered by group.
    ``project`` None: every project (admins only). Naive datetimes are taken as UTC."""
    if by not in GROUP_BY:
        raise ValueError(f"{by!r}: group by one of {GROUP_BY}")
    group = _DAY[database.kind] if by == "day" else _COLUMN[by]
    where: list[str] = []
    params: list[Any] = []
    if project is not None:
        where.append("project = ?")
        params.append(project)
    if since is not None:
        where.append("started_at >= ?")
        params.append(_unix(since))
    if until is not None:
        where.append("started_at < ?")
        params.append(_unix(until))
    statement = (
        f"SELECT {group} AS grp, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), "
        "SUM(CASE WHEN streamed THEN 1 ELSE 0 END), SUM(CASE WHEN interrupted THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) FROM usage"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " GROUP BY grp ORDER BY grp"
    )
    # A database no gateway has written to yet reports nothing rather than failing.
    database.apply_schema(USAGE_SCHEMA)
    return [
        UsageSummary(
            group=str(row[0]),
            requests=int(row[1]),
            prompt_tokens=int(row[2] or 0),
            completion_tokens=int(row[3] or 0),
            streamed=int(row[4] or 0),
            interrupted=int(row[5] or 0),
            errors=int(row[6] or 0),
        )
        for row in database.execute(statement, params)
    ]


def _unix(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class LedgerReader:
    """``core.tenancy.UsageReader`` over the ledger's database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def report(
        self, project: str | None, since: float | None, until: float | None, by: str
    ) -> list[Mapping[str, object]]:
        if by not in GROUP_BY:
            raise InvalidRequestError(f"'by' is one of {', '.join(GROUP_BY)}", param="by")
        start = datetime.fromtimestamp(since, UTC) if since is not None else None
        end = datetime.fromtimestamp(until, UTC) if until is not None else None
        rows = usage_report(self._database, project, start, end, by)
        return [row.as_dict() for row in rows]
