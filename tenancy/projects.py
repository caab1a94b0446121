"""Projects' own limits (the ``projects`` table), over every key of the project together.

A project has a row only once limits were set for it (``aihub projects limits``); any other project
has none. The limiter reads limits through a small cache (``cached``): a change reaches every gateway
within ``cache_s``, and a project without limits costs no database work on the request path.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidRequestError
from core.tenancy import Limits
from tenancy.database import Database, DatabaseError
from tenancy.keys import SCHEMA as KEYS_SCHEMA

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS projects (
        name TEXT PRIMARY KEY,
        rpm BIGINT,
        tpm BIGINT,
        max_concurrency INTEGER,
        token_budget BIGINT,
        budget_period TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
)
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)  # as tenancy.keys names them
_MAX_CACHED = 10_000  # projects; past it the cache starts over (a cold entry costs one query)
_LIMIT_FIELDS = ("rpm", "tpm", "max_concurrency", "token_budget")


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """One project as ``aihub projects ls`` shows it: its limits and how many keys it has."""

    name: str
    limits: Limits
    keys: int = 0
    active_keys: int = 0


def validate_limits(limits: Limits) -> None:
    for name in _LIMIT_FIELDS:
        value = getattr(limits, name)
        if value is not None and not (isinstance(value, int) and 1 <= value < 2**62):
            raise InvalidRequestError(f"{name} must be a positive integer, got {value!r}", param=name)
    if limits.budget_period not in ("day", "month"):
        raise InvalidRequestError("budget_period must be 'day' or 'month'", param="budget_period")


class ProjectLimitStore:
    """Reads and writes projects' limits; ``cached`` answers from memory for the request path."""

    def __init__(
        self,
        database: Database,
        *,
        cache_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self._cache_s = cache_s
        self._clock = clock
        self._monotonic = monotonic
        # project -> (fresh until, limits); read on the event loop, written by worker threads.
        self._cache: dict[str, tuple[float, Limits]] = {}
        self._write_lock = threading.Lock()
        try:
            database.apply_schema((*KEYS_SCHEMA, *SCHEMA))
        except DatabaseError:  # gateways starting together race on CREATE … IF NOT EXISTS (see KeyStore)
            time.sleep(0.2)
            database.apply_schema((*KEYS_SCHEMA, *SCHEMA))

    def cached(self, project: str) -> tuple[Limits | None, bool]:
        """``(limits, fresh)`` from memory, no database work; ``(None, False)`` when never read."""
        entry = self._cache.get(project)
        if entry is None:
            return None, False
        return entry[1], entry[0] > self._monotonic()

    def remember(self, project: str, limits: Limits, for_s: float | None = None) -> None:
        with self._write_lock:
            if len(self._cache) >= _MAX_CACHED and project not in self._cache:
                self._cache = {}
            self._cache[project] = (self._monotonic() + (self._cache_s if for_s is None else for_s), limits)

    def get(self, project: str) -> Limits:
        """The project's limits from the database (``Limits()`` when it has none); refreshes the cache."""
        rows = self.database.execute(
            "SELECT rpm, tpm, max_concurrency, token_budget, budget_period FROM projects WHERE name = ?",
            (project,),
        )
        limits = _limits(rows[0]) if rows else Limits()
        self.remember(project, limits)
        return limits

    def set(self, project: str, limits: Limits) -> Limits:
        """Replaces the project's limits (all of them: ``Limits()`` removes every one)."""
        if not _PROJECT.fullmatch(project):
            raise InvalidRequestError(
                f"{project!r}: a project name is 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                param="project",
            )
        validate_limits(limits)
        now = self._clock()
        self.database.execute(
            "INSERT INTO projects (name, rpm, tpm, max_concurrency, token_budget, budget_period, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "rpm = excluded.rpm, tpm = excluded.tpm, max_concurrency = excluded.max_concurrency, "
            "token_budget = excluded.token_budget, budget_period = excluded.budget_period, "
            "updated_at = excluded.updated_at",
            (
                project,
                limits.rpm,
                limits.tpm,
                limits.max_concurrency,
                limits.token_budget,
                limits.budget_period,
                now,
                now,
            ),
        )
        self.remember(project, limits)
        return limits

    def list(self) -> list[ProjectInfo]:
        """Every project that has limits or keys, by name, with its key counts."""
        now = self._clock()
        with self.database.transaction() as cursor:
            cursor.execute(
                "SELECT name, rpm, tpm, max_concurrency, token_budget, budget_period FROM projects"
            )
            limits = {row[0]: _limits(row[1:]) for row in cursor.fetchall()}
            cursor.execute(
                self.database.sql(
                    "SELECT project, COUNT(*), SUM(CASE WHEN revoked_at IS NULL AND "
                    "(expires_at IS NULL OR expires_at > ?) THEN 1 ELSE 0 END) FROM api_keys GROUP BY project"
                ),
                (now,),
            )
            keys = {row[0]: (int(row[1]), int(row[2] or 0)) for row in cursor.fetchall()}
        return [
            ProjectInfo(name, limits.get(name, Limits()), *keys.get(name, (0, 0)))
            for name in sorted(limits.keys() | keys.keys())
        ]


def _limits(row: Any) -> Limits:
    rpm, tpm, concurrency, budget, period = row
    return Limits(rpm=rpm, tpm=tpm, max_concurrency=concurrency, token_budget=budget, budget_period=period)
