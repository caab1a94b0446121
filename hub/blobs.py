"""Content-addressed blobs under ``blobs/sha256``: written atomically, verified when read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import ArtifactNotFoundError, IntegrityError
from hub.atomic import TEMP_PREFIX, publish, temp_file
from hub.digests import DIGEST_RE, Progress, Sink, copy_and_hash, digest_bytes, hex_of


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.folder = root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        return self.folder / hex_of(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def put_bytes(self, data: bytes) -> str:
        digest = digest_bytes(data)
        final = self.path(digest)
        with temp_file(self.folder, f"blob {digest}") as (handle, temp):
            handle.write(data)
            os.fsync(handle.fileno())
        publish(temp, final, f"blob {digest}")
        return digest

    def put_stream(
        self, source: BinaryIO, expected: str | None = None, progress: Progress | None = None
    ) -> tuple[str, int]:
        """Hash while copying into a temp file; refuse content that does not match ``expected``."""
        digest, size, temp = self.write_temp(source, expected, progress)
        # Replacing an existing blob with identical content is harmless and repairs a damaged one.
        publish(temp, self.path(digest), f"blob {digest}")
        return digest, size

    def write_temp(
        self, source: BinaryIO, expected: str | None = None, progress: Progress | None = None
    ) -> tuple[str, int, Path]:
        """(digest, size, fsync'd temp file) not yet published: the caller publishes or removes it."""
        with temp_file(self.folder, f"blob {expected or ''}".strip()) as (handle, temp):
            digest, size = copy_and_hash(source, handle, progress)
            if expected is not None and digest != expected:
                raise IntegrityError(f"blob {expected} does not match its digest (got {digest})")
            os.fsync(handle.fileno())
        return digest, size, temp

    def put_file(self, path: Path, progress: Progress | None = None) -> tuple[str, int]:
        with open(path, "rb", buffering=0) as source:
            return self.put_stream(source, progress=progress)

    def read_bytes(self, digest: str) -> bytes:
        """A small blob (manifest, config), verified against its digest."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"blob {digest} is missing from the store") from None
        if digest_bytes(data) != digest:
            raise IntegrityError(f"blob {digest} is corrupt: content does not match its digest")
        return data

    def copy_verified(self, digest: str, dest: Sink, progress: Progress | None = None) -> int:
        """Stream a blob into ``dest``, checking its digest; the caller discards ``dest`` on error."""
        try:
            source = open(self.path(digest), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"blob {digest} is missing from the store") from None
        with source:
            actual, size = copy_and_hash(source, dest, progress)
        if actual != digest:
            raise IntegrityError(f"blob {digest} is corrupt: content does not match its digest")
        return size

    def check(self, digest: str) -> None:
        """Raise IntegrityError unless the blob's content matches its name."""
        self.copy_verified(digest, _NullSink())

    def digests(self) -> Iterator[str]:
        if not self.folder.is_dir():
            return
        for entry in os.scandir(self.folder):
            digest = "sha256:" + entry.name
            if DIGEST_RE.match(digest):
                yield digest

    def temp_files(self) -> Iterator[Path]:
        """Leftovers of interrupted writes (a killed process); never referenced by anything."""
        if self.folder.is_dir():
            for entry in os.scandir(self.folder):
                if entry.name.startswith(TEMP_PREFIX):
                    yield Path(entry.path)

    def delete(self, digest: str) -> int:
        path = self.path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size


class _NullSink:
    def write(self, data: bytes | memoryview) -> int:
        return len(data)
