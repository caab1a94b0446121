"""Unpacked copies of artifacts for engines that need a folder of files (a model for transformers).

Each layer is hashed while it is copied out, once; a record of every file's digest, size and mtime
lets later calls return the folder cheaply, and lets ``verify`` re-hash it and catch tampering."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from core.errors import IntegrityError
from hub.atomic import file_lock, storage_error, write_atomic
from hub.blobs import BlobStore
from hub.digests import Progress, digest_file, hex_of
from hub.manifest import ParsedManifest


class MaterializeSource(Protocol):
    """What unpacking needs of the store (``hub.store.LocalStore``)."""

    @property
    def cache_dir(self) -> Path: ...

    @property
    def blobs(self) -> BlobStore: ...

    def manifest(self, digest: str) -> ParsedManifest: ...


RECORD = ".aihub-materialized.json"


def safe_relative(title: str) -> PurePosixPath:
    path = PurePosixPath(title)
    if not title or path.is_absolute() or ".." in path.parts:
        raise IntegrityError(f"layer title {title!r} is not a safe relative path")
    return path


def _read_record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / RECORD).read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _looks_intact(folder: Path, digest: str) -> bool:
    record = _read_record(folder)
    if record is None or record.get("digest") != digest:
        return False
    for relative, entry in record.get("files", {}).items():
        try:
            stat = (folder / relative).stat()
        except OSError:
            return False
        if stat.st_size != entry["size"] or stat.st_mtime_ns != entry["mtime_ns"]:
            return False
    return True


def materialize(store: MaterializeSource, digest: str, progress: Progress | None = None) -> Path:
    folder = store.cache_dir / hex_of(digest)
    if _looks_intact(folder, digest):
        return folder
    store.cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(store.cache_dir / f".{hex_of(digest)}.lock"):
        if _looks_intact(folder, digest):
            return folder  # another process unpacked it meanwhile
        manifest = store.manifest(digest)
        temp = store.cache_dir / f".tmp-{hex_of(digest)[:16]}-{uuid.uuid4().hex[:8]}"
        try:
            files: dict[str, dict[str, Any]] = {}
            for layer in manifest.layers:
                relative = safe_relative(layer.path)
                target = temp / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb", buffering=0) as handle:
                    store.blobs.copy_verified(layer.digest, handle, progress)
                    os.fsync(handle.fileno())
                os.chmod(target, 0o444)  # a reminder that these files are content-addressed
                stat = target.stat()
                files[str(relative)] = {
                    "digest": layer.digest,
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                }
            write_atomic(temp / RECORD, json.dumps({"digest": digest, "files": files}).encode(), "record")
            if folder.exists():
                _remove(folder)
            os.replace(temp, folder)
        except OSError as exc:
            _remove(temp)
            raise storage_error(exc, f"unpacked copy of {digest}") from exc
        except BaseException:
            _remove(temp)
            raise
    return folder


def verify_materialized(store: MaterializeSource, digest: str) -> list[str]:
    """Problems with the unpacked copy of ``digest`` (none if it was never unpacked)."""
    folder = store.cache_dir / hex_of(digest)
    if not folder.exists():
        return []
    record = _read_record(folder)
    if record is None:
        return [f"unpacked copy {folder} has no readable record"]
    problems = []
    for relative, entry in record.get("files", {}).items():
        path = folder / relative
        try:
            actual, _ = digest_file(path)
        except OSError:
            problems.append(f"unpacked copy of {digest}: file {relative} is missing")
            continue
        if actual != entry["digest"]:
            problems.append(
                f"unpacked copy of {digest}: file {relative} does not match blob {entry['digest']}"
            )
    return problems


def _remove(path: Path) -> None:
    if not path.exists():
        return
    for child in path.rglob("*"):
        if child.is_file():
            os.chmod(child, 0o644)
    shutil.rmtree(path, ignore_errors=True)
