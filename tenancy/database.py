"""The tenancy database: a SQLite file (embedded default) or PostgreSQL (shared by several gateways).

A small synchronous seam over both DB-API drivers: statements are written once with ``?`` placeholders
and run on either. Callers on the event loop go through ``asyncio.to_thread``; each thread keeps its own
connection (sqlite3 connections must stay in their thread; psycopg's are not shared across threads
either). Schemas are ``CREATE … IF NOT EXISTS`` statements, applied once per ``Database``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from core.errors import AihubError, ErrorKind, InvalidSpecError

logger = logging.getLogger(__name__)

Params = Sequence[Any]


class DatabaseError(AihubError):
    """The tenancy database failed or could not be reached."""

    kind = ErrorKind.UNAVAILABLE
    default_code = "database_unavailable"


class Database:
    """``sqlite:///abs/path.db`` (or a plain path) or ``postgresql://user@host:port/db``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind: Literal["sqlite", "postgresql"]
        if url.startswith(("postgresql://", "postgres://")):
            self.kind = "postgresql"
            self._path: Path | None = None
        else:
            self.kind = "sqlite"
            self._path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url)
            if not self._path.is_absolute():
                raise InvalidSpecError(f"{url!r}: a SQLite database path must be absolute")
            self._path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the DSN: it may hold a password
        return f"Database({self.kind})"

    def _connect(self) -> Any:
        if self.kind == "sqlite":
            return self._connect_sqlite()
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise DatabaseError(f"PostgreSQL could not be reached: {type(exc).__name__}") from None

    def _connect_sqlite(self) -> sqlite3.Connection:
        assert self._path is not None
        # Key hashes and usage: readable by the owner only. SQLite gives its -wal and -shm files the
        # main file's mode, so creating the file first (O_EXCL: an existing file is left alone) covers all.
        try:
            os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:  # its folder gone or not a folder: the database is down, as sqlite would say
            raise DatabaseError(f"the tenancy database could not be opened: {exc}") from None
        # Two processes opening a new file at once: switching it to WAL can fail with "database is
        # locked" at once, without the busy timeout; the switch is simply tried again.
        for attempt in range(50):
            try:
                connection = sqlite3.connect(
                    self._path, timeout=30.0, isolation_level=None, check_same_thread=False
                )
                connection.execute("PRAGMA busy_timeout=30000")
                # WAL: readers never wait for the writer, and several processes share the file safely.
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                return connection
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise DatabaseError(f"the tenancy database could not be opened: {exc}") from None
                time.sleep(0.02)
        raise AssertionError("unreachable")

    def connection(self) -> Any:
        """This thread's connection (opened on first use)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
            with self._lock:
                self._connections.append(connection)
        return connection

    def sql(self, statement: str) -> str:
        """``?`` placeholders for the driver at hand (psycopg takes ``%s``)."""
        return statement.replace("?", "%s") if self.kind == "postgresql" else statement

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: committed at the end, rolled back on an error."""
        connection = self.connection()
        try:
            if self.kind == "sqlite":
                cursor = connection.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            else:
                with connection.transaction(), connection.cursor() as cursor:
                    yield cursor
        except (sqlite3.Error, _pg_error()) as exc:
            self._drop_broken(connection)
            raise DatabaseError(f"the tenancy database failed: {type(exc).__name__}: {exc}") from None

    def execute(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """One statement in its own transaction; the rows it returns (if any)."""
        with self.transaction() as cursor:
            cursor.execute(self.sql(statement), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        with self.transaction() as cursor:
            cursor.executemany(self.sql(statement), [tuple(row) for row in rows])

    def apply_schema(self, statements: Sequence[str]) -> None:
        """Idempotent DDL (``CREATE TABLE IF NOT EXISTS …``), in one transaction."""
        with self.transaction() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def _drop_broken(self, connection: Any) -> None:
        """A failed connection is not reused: the next call on this thread opens a new one."""
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        try:
            connection.close()
        except Exception:  # already broken
            logger.debug("closing a failed connection failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except Exception:
                logger.debug("closing a connection failed", exc_info=True)
        self._local = threading.local()


def _pg_error() -> type[Exception]:
    try:
        import psycopg
    except ImportError:  # SQLite-only installs
        return sqlite3.Error
    return psycopg.Error
