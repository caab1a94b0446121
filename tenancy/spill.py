"""The ledger's spill file: usage rows kept as JSON lines on local disk while the database cannot take them.

Several gateway processes may share one home, hence one spill file. An ``flock`` on the file orders
appends against claims: a claim renames the file to ``<name>.replay-<uuid>`` under the lock, so no append
lands in a file being replayed (an appender re-checks the inode under the lock and reopens the path when
the file it holds was claimed). The claimer then replays its file without holding the spill lock and
deletes it once every row is in the database; a claimed file is ``flock``-ed by its replayer, so a file
left by a process that died mid-replay (no lock) is picked up by the next claim, and a live replay is not.
Rows carry their ledger id and the insert ignores ids already present, so replaying a file twice
(a crash between the insert and the delete) never duplicates a row.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

logger = logging.getLogger(__name__)

Row = dict[str, Any]
T = TypeVar("T")


class SpillFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # this process's threads; flock orders processes
        self._handle: IO[str] | None = None
        self._unsynced = False
        self.rejected = 0  # lines moved to <name>.rejected

    def _open(self) -> IO[str]:
        """The append handle, reopened when another claim moved the file it pointed to."""
        handle = self._handle
        if handle is not None:
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return handle
            handle.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        return handle

    @contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        with self._lock:
            while True:
                handle = self._open()
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                # Claimed by another process between our open and our lock: append to the new file.
                if os.fstat(handle.fileno()).st_ino == _inode(self.path):
                    break
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append(self, rows: Sequence[Row], *, sync: bool) -> None:
        """Appends rows (raises OSError). ``sync=False`` (the request path) leaves the fsync to ``sync()``:
        the rows are in the kernel's page cache and survive the process, not a power cut."""
        if not rows:
            return
        text = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        with self._locked() as handle:
            handle.write(text)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
                self._unsynced = False
            else:
                self._unsynced = True

    def sync(self) -> None:
        """fsync rows appended with ``sync=False``."""
        with self._lock:
            if self._unsynced and self._handle is not None:
                os.fsync(self._handle.fileno())
                self._unsynced = False

    def pending(self) -> bool:
        """Whether anything may wait for replay (cheap: called by the writer on each round)."""
        try:
            if self.path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
        return any(self._claimed_files())

    def _claimed_files(self) -> Iterator[Path]:
        return self.path.parent.glob(f"{self.path.name}.replay-*")

    def claim(self) -> None:
        """Moves the current spill file aside for replay; new appends go to a fresh file."""
        with self._locked() as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return
            if self._unsynced:
                os.fsync(handle.fileno())
                self._unsynced = False
            os.rename(self.path, self.path.with_name(f"{self.path.name}.replay-{uuid.uuid4().hex}"))
        _fsync_dir(self.path.parent)

    @contextmanager
    def replaying(self) -> Iterator[list[Path]]:
        """The claimed files no live process is replaying, locked for the caller until the block ends."""
        held: list[tuple[Path, IO[bytes]]] = []
        try:
            for path in sorted(self._claimed_files()):
                try:
                    handle: IO[bytes] = open(path, "rb")  # noqa: SIM115 (held for the replay)
                except FileNotFoundError:  # another process finished it meanwhile
                    continue
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                if not path.exists():  # deleted by its replayer between our glob and our lock
                    handle.close()
                    continue
                held.append((path, handle))
            yield [path for path, _ in held]
        finally:
            for _, handle in held:
                handle.close()

    def read(self, path: Path, batch_size: int, parse: Callable[[Row], T]) -> Iterator[list[T]]:
        """A claimed file's rows through ``parse``, in batches. A line that is not JSON or that ``parse``
        refuses (ValueError: a write torn by a crash, a hand edit) goes to ``<name>.rejected`` with an
        error in the log: kept for a human, never silently dropped."""
        batch: list[T] = []
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("not a JSON object")
                    batch.append(parse(row))
                except ValueError as exc:
                    self._reject(path, number, line, exc)
                    continue
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _reject(self, path: Path, number: int, line: str, exc: ValueError) -> None:
        rejected = self.path.with_name(f"{self.path.name}.rejected")
        self.rejected += 1
        logger.error(
            "usage spill %s line %d is not a usage row (%s); kept in %s", path.name, number, exc, rejected
        )
        with open(rejected, "a", encoding="utf-8") as handle:
            handle.write(line if line.endswith("\n") else line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def done(self, path: Path) -> None:
        """Every row of a claimed file is in the database: delete it, durably."""
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def replay(
        self,
        insert: Callable[[list[T]], None],
        parse: Callable[[Row], T],
        batch_size: int,
        stop: Callable[[], bool],
    ) -> int:
        """Claims the file, then feeds every claimed file no live process is replaying to ``insert`` in
        batches, deleting each once all its rows are in; the rows replayed. What ``insert`` raises
        propagates, and the files stay for the next try (``stop()`` True also leaves them)."""
        self.claim()
        total = 0
        with self.replaying() as paths:
            for path in paths:
                count = 0
                for rows in self.read(path, batch_size, parse):
                    if stop():
                        return total
                    insert(rows)
                    count += len(rows)
                self.done(path)
                total += count
                logger.info("usage ledger: replayed %d spilled rows from %s", count, path.name)
        return total

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                if self._unsynced:
                    os.fsync(self._handle.fileno())
                    self._unsynced = False
                self._handle.close()
                self._handle = None


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _fsync_dir(folder: Path) -> None:
    """A rename or delete is durable once its folder is synced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
