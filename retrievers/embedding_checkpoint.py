"""Finished bulk-embedding batches kept on disk, so that an interrupted index build resumes from its last
finished batch instead of embedding everything again.

One folder per build input: its name is a digest of the texts and of everything that decides the
batches and their vectors (embedder digest, dtype, runtime, token budget, ...). A changed input or
parameter set therefore finds no folder and starts clean. Each batch is written to a temporary name and
renamed, so a kill leaves whole batches or none; a batch file that does not load back with the expected
shape is embedded again. The folder is removed once the index is pushed; the index itself is only ever
built and tagged after every batch is there, so a half index is never published.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from core.embedder import BulkEmbedder, TokenProgress

logger = logging.getLogger(__name__)

KEY_FILE = "key.json"
STALE_AFTER_S = 7 * 24 * 3600.0  # folders of builds abandoned this long ago are removed


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over the texts in order (length-prefixed, so no two lists collide by concatenation)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(slots=True)
class BatchCheckpoint:
    """The batches finished so far for one (texts, parameters) key."""

    folder: Path
    reused: int = 0  # batches loaded back instead of embedded, in this run
    written: int = 0  # batches embedded and saved, in this run
    _present: set[int] = field(default_factory=set)

    @classmethod
    def open(cls, root: Path, key: Mapping[str, Any]) -> BatchCheckpoint:
        text = json.dumps(dict(key), sort_keys=True, default=str)
        name = hashlib.sha256(text.encode()).hexdigest()[:32]
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale(root, keep=name)
        folder = root / name
        folder.mkdir(exist_ok=True)
        (folder / KEY_FILE).write_text(text)
        present = {int(p.stem) for p in folder.glob("*.npy") if p.stem.isdigit()}
        return cls(folder, _present=present)

    @property
    def finished(self) -> int:
        """Batches found on disk when the checkpoint was opened."""
        return len(self._present)

    def load(self, index: int, rows: int, dimensions: int) -> npt.NDArray[np.float32] | None:
        """Batch ``index`` if it was finished before and loads back whole; else None (embed it)."""
        if index not in self._present:
            return None
        path = self._path(index)
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            logger.warning("embedding batch %s is unreadable (%s); embedding it again", path, exc)
            vectors = None
        if (
            vectors is None
            or vectors.shape != (rows, dimensions)
            or vectors.dtype != np.float32
            or not np.isfinite(vectors).all()
        ):
            path.unlink(missing_ok=True)
            self._present.discard(index)
            return None
        self.reused += 1
        return vectors

    def save(self, index: int, vectors: npt.NDArray[np.float32]) -> None:
        path = self._path(index)
        partial = path.with_name(f".{path.stem}.{os.getpid()}.partial")
        # A concurrent build of the same input may have finished and removed the folder meanwhile.
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with partial.open("wb") as out:
                np.save(out, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        self._present.add(index)
        self.written += 1

    def discard(self) -> None:
        """Forget the batches (the index they were for is built and pushed)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._present.clear()

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.npy"


@runtime_checkable
class ResumableBulkEmbedder(BulkEmbedder, Protocol):
    """A bulk embedder whose batches are deterministic for a key, so finished ones can be kept."""

    def bulk_key(self) -> dict[str, Any]:
        """Everything besides the texts that decides the bulk batches and their vectors."""
        ...

    def embed_bulk(
        self,
        texts: Sequence[str],
        progress: TokenProgress | None = None,
        checkpoint: BatchCheckpoint | None = None,
    ) -> npt.NDArray[np.float32]: ...


def open_checkpoint(root: Path, embedder: ResumableBulkEmbedder, texts: Sequence[str]) -> BatchCheckpoint:
    return BatchCheckpoint.open(
        root, {"texts": texts_digest(texts), "count": len(texts), **embedder.bulk_key()}
    )


def _remove_stale(root: Path, keep: str) -> None:
    cutoff = time.time() - STALE_AFTER_S
    for folder in root.iterdir():
        try:
            if folder.name != keep and folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # removed by a concurrent build meanwhile
            continue
