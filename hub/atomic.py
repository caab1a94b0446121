"""Atomic file writes (temp file in the same folder, fsync, rename) and advisory file locks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import StorageError
from hub.digests import fsync_dir

TEMP_PREFIX = ".tmp-"


def storage_error(exc: OSError, what: str) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(f"cannot write {what}: no space left on device")
    return StorageError(f"cannot write {what}: {exc.strerror or exc}")


@contextlib.contextmanager
def temp_file(folder: Path, what: str) -> Iterator[tuple[BinaryIO, Path]]:
    """A temp file next to its final place; removed unless the caller renamed it away."""
    try:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    except OSError as exc:
        raise storage_error(exc, what) from exc
    path = Path(name)
    try:
        with os.fdopen(fd, "wb", buffering=0) as handle:
            yield handle, path
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise storage_error(exc, what) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def publish(temp: Path, final: Path, what: str, mode: int = 0o444) -> None:
    """fsync'd temp file → its final name, atomically; the folder entry is made durable too."""
    try:
        os.chmod(temp, mode)
        os.replace(temp, final)
        fsync_dir(final.parent)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise storage_error(exc, what) from exc


def write_atomic(path: Path, data: bytes, what: str, mode: int = 0o644) -> None:
    with temp_file(path.parent, what) as (handle, temp):
        handle.write(data)
        os.fsync(handle.fileno())
    publish(temp, path, what, mode)


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """fcntl.flock on ``path``: held by this process until the block ends (or the process dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
