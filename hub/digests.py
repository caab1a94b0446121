"""sha256 digests: of bytes, of files, and while copying a stream (one pass over the data)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from core.errors import IntegrityError

# Large buffers: hashing and copying a 500 MB model is bound by memory bandwidth, not syscalls.
BUFFER_SIZE = 8 * 1024 * 1024
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")

Progress = Callable[[int], None]  # called with the number of bytes just processed


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int | None: ...


def digest_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise IntegrityError(f"not a sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]


def copy_and_hash(source: BinaryIO, dest: Sink | None, progress: Progress | None = None) -> tuple[str, int]:
    """Read ``source`` to its end, writing to ``dest`` (if any); returns (digest, size)."""
    sha = hashlib.sha256()
    buffer = bytearray(BUFFER_SIZE)
    view = memoryview(buffer)
    size = 0
    while True:
        count = source.readinto(view)  # type: ignore[attr-defined]
        if not count:
            break
        chunk = view[:count]
        sha.update(chunk)
        if dest is not None:
            dest.write(chunk)
        size += count
        if progress is not None:
            progress(count)
    return "sha256:" + sha.hexdigest(), size


def digest_file(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    with open(path, "rb", buffering=0) as handle:
        return copy_and_hash(handle, None, progress)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
