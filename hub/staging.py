"""Blobs of one import or pull, held in temp files until the whole transfer checks out, then published
together: an archive or registry that turns out incomplete, oversized or corrupt leaves the store as it was.
Temp files left by a killed process carry the temp prefix, so `gc` removes them."""

from __future__ import annotations

import io
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from core.errors import IntegrityError
from hub.atomic import publish
from hub.blobs import BlobStore
from hub.digests import Progress, digest_bytes


class SizeLimitedReader:
    """A source that may not yield more than its declared size (a tar header's, a descriptor's)."""

    def __init__(self, source: BinaryIO, limit: int, what: str) -> None:
        self._source, self._limit, self._what = source, limit, what
        self._seen = 0

    def readinto(self, buffer: memoryview) -> int:
        # One byte past the limit is enough to know the source lies; nothing past it is read.
        room = min(len(buffer), self._limit + 1 - self._seen)
        count: int = self._source.readinto(buffer[:room])  # type: ignore[attr-defined]
        self._seen += count
        if self._seen > self._limit:
            raise IntegrityError(f"{self._what} is larger than its declared {self._limit:,} bytes")
        return count


class BlobStaging:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._staged: dict[str, Path] = {}  # digest → fsync'd temp file, in the order written

    def __enter__(self) -> BlobStaging:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()

    def __len__(self) -> int:
        return len(self._staged)

    def has(self, digest: str) -> bool:
        return digest in self._staged or self.blobs.has(digest)

    def stage_stream(self, source: BinaryIO, digest: str, size: int, progress: Progress | None = None) -> int:
        """Copy exactly ``size`` bytes whose sha256 is ``digest`` into a temp file; returns the size."""
        reader = SizeLimitedReader(source, size, f"blob {digest}")
        _, written, temp = self.blobs.write_temp(reader, expected=digest, progress=progress)  # type: ignore[arg-type]
        if written != size:
            temp.unlink(missing_ok=True)
            raise IntegrityError(f"blob {digest} has {written:,} bytes; its descriptor says {size:,}")
        self._keep(digest, temp)
        return written

    def stage_bytes(self, data: bytes) -> str:
        digest = digest_bytes(data)
        if not self.has(digest):
            _, _, temp = self.blobs.write_temp(io.BytesIO(data), expected=digest)
            self._keep(digest, temp)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        """A small staged or stored blob (manifest, config), verified against its digest."""
        staged = self._staged.get(digest)
        if staged is None:
            return self.blobs.read_bytes(digest)
        data = staged.read_bytes()
        if digest_bytes(data) != digest:
            raise IntegrityError(f"blob {digest} is corrupt: content does not match its digest")
        return data

    def commit(self) -> None:
        """Publish every staged blob (in the order staged: manifests go last by the callers' order)."""
        while self._staged:
            digest = next(iter(self._staged))
            publish(self._staged.pop(digest), self.blobs.path(digest), f"blob {digest}")

    def discard(self) -> None:
        for temp in self._staged.values():
            temp.unlink(missing_ok=True)
        self._staged.clear()

    def _keep(self, digest: str, temp: Path) -> None:
        if digest in self._staged:
            temp.unlink(missing_ok=True)
        else:
            self._staged[digest] = temp
