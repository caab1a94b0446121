"""Per-item results appended to a JSONL file as they finish, so an interrupted run can resume."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import orjson

logger = logging.getLogger(__name__)


def read_results(path: Path, repair: bool = False) -> dict[str, dict[str, Any]]:
    """Records by item id. A torn last line (the process died mid-write) is dropped, and with
    ``repair`` cut from the file so appending continues on a clean line."""
    if not path.exists():
        return {}
    records: dict[str, dict[str, Any]] = {}
    good_end = 0
    with path.open("rb") as handle:
        for line in handle:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                logger.warning("%s: dropping a torn line after %d records", path, len(records))
                break
            records[str(record["id"])] = record
            good_end += len(line)
    if repair and good_end < path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    return records


class ResultsLog:
    """Appends one JSON line per record and flushes it; fsyncs every ``sync_every`` records."""

    def __init__(self, path: Path, sync_every: int = 64) -> None:
        self.path = path
        self.sync_every = sync_every
        self._handle: IO[bytes] | None = None
        self._unsynced = 0

    def __enter__(self) -> ResultsLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("ab")
        return self

    def append(self, record: Mapping[str, Any]) -> None:
        assert self._handle is not None
        self._handle.write(orjson.dumps(record) + b"\n")
        self._handle.flush()
        self._unsynced += 1
        if self._unsynced >= self.sync_every:
            os.fsync(self._handle.fileno())
            self._unsynced = 0

    def __exit__(self, *_: object) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
