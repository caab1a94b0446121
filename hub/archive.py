"""export / import: an artifact and everything it references as an OCI image layout in a tar file,
for air-gapped transfer. Blobs are verified while they are written out and again when read in."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from pathlib import Path
from typing import Any

from core.errors import IntegrityError
from core.refs import ArtifactRef
from hub.archive_import import ArchiveReport, import_archive
from hub.atomic import publish, temp_file
from hub.digests import BUFFER_SIZE, Progress, hex_of
from hub.lock import resolve_lock
from hub.media_types import ANNOTATION_NAME, ANNOTATION_REF_NAME, OCI_INDEX, OCI_LAYOUT_VERSION, OCI_MANIFEST
from hub.store import LocalStore

logger = logging.getLogger(__name__)
__all__ = ["ArchiveReport", "export_archive", "import_archive"]


class _HashingReader:
    def __init__(self, path: Path) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size if size and size > 0 else BUFFER_SIZE)
        self.sha.update(data)
        return data

    def close(self) -> None:
        self._handle.close()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def export_archive(
    store: LocalStore, ref: str, target: Path, progress: Progress | None = None
) -> ArchiveReport:
    parsed = ArtifactRef.parse(ref)
    name, root = store.resolve_digest(parsed)
    lock = resolve_lock(store, parsed)
    manifests = [entry.digest for entry in lock.entries] + [r.digest for r in store.referrers(root)]
    blobs: dict[str, None] = {}
    for digest in manifests:
        manifest = store.manifest(digest)
        blobs.update(dict.fromkeys([*manifest.blob_digests, digest]))
    index_entries: list[dict[str, Any]] = []
    for entry in lock.entries:
        annotations = {ANNOTATION_NAME: entry.name}
        if entry.digest == root and parsed.tag is not None:
            annotations[ANNOTATION_REF_NAME] = f"{name}:{parsed.tag}"
        index_entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": entry.digest,
                "size": store.blobs.size(entry.digest),
                "annotations": annotations,
            }
        )
    for referrer in store.referrers(root):
        index_entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": referrer.digest,
                "size": store.blobs.size(referrer.digest),
                "annotations": {ANNOTATION_NAME: referrer.name, "vnd.aihub.subject": root},
            }
        )
    total = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with temp_file(target.parent, f"archive {target}") as (handle, temp):
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode())
            body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}
            _add_bytes(tar, "index.json", json.dumps(body, indent=1, sort_keys=True).encode())
            for digest in blobs:
                info = tar.gettarinfo(str(store.blobs.path(digest)), arcname=f"blobs/sha256/{hex_of(digest)}")
                info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = 0o444, 0, 0, "", "", 0
                reader = _HashingReader(store.blobs.path(digest))
                try:
                    tar.addfile(info, reader)
                finally:
                    reader.close()
                if "sha256:" + reader.sha.hexdigest() != digest:
                    raise IntegrityError(f"blob {digest} is corrupt: content does not match its digest")
                total += info.size
                if progress is not None:
                    progress(info.size)
        os.fsync(handle.fileno())
    publish(temp, target, f"archive {target}", mode=0o644)
    return ArchiveReport(len(index_entries), len(blobs), total)
