"""``index.json`` of the OCI layout: the tags. Read through a cache keyed by the file's identity,
updated by write-temp-and-rename under an exclusive flock so concurrent writers never lose an update."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import IntegrityError
from hub.atomic import file_lock, write_atomic
from hub.media_types import ANNOTATION_REF_NAME, OCI_LAYOUT_VERSION

Descriptor = dict[str, Any]
INDEX_LOCK = ".index.lock"


@dataclass(frozen=True)
class IndexSnapshot:
    manifests: tuple[Descriptor, ...]
    by_ref: dict[str, Descriptor]  # "name:tag" → descriptor


def _snapshot(manifests: list[Descriptor]) -> IndexSnapshot:
    by_ref: dict[str, Descriptor] = {}
    for descriptor in manifests:
        ref = (descriptor.get("annotations") or {}).get(ANNOTATION_REF_NAME)
        if ref:
            by_ref[ref] = descriptor
    return IndexSnapshot(tuple(manifests), by_ref)


class IndexFile:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "index.json"
        self.lock_path = root / INDEX_LOCK
        self._cache_key: tuple[int, int, int] | None = None
        self._cache: IndexSnapshot | None = None
        self._guard = threading.Lock()

    def ensure(self) -> None:
        layout = self.root / "oci-layout"
        if not layout.exists():
            write_atomic(
                layout, json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode(), "oci-layout"
            )
        if not self.path.exists():
            with file_lock(self.lock_path):
                if not self.path.exists():
                    self._write([])

    def snapshot(self) -> IndexSnapshot:
        """The parsed index; re-read only when the file was replaced (a rename gives a new inode)."""
        stat = os.stat(self.path)
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._cache
        if cached is not None and key == self._cache_key:
            return cached
        with self._guard:
            snapshot = _snapshot(self._read())
            self._cache, self._cache_key = snapshot, key
            return snapshot

    def update(self, change: Callable[[list[Descriptor]], list[Descriptor]]) -> None:
        with file_lock(self.lock_path):
            self._write(change(self._read()))

    def _read(self) -> list[Descriptor]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise IntegrityError(f"index.json of the hub at {self.root} is unreadable: {exc}") from exc
        manifests = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(manifests, list):
            raise IntegrityError(f"index.json of the hub at {self.root} has no manifests list")
        return manifests

    def _write(self, manifests: list[Descriptor]) -> None:
        data = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode(), "index.json")
