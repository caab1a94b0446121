"""import: an OCI image layout tar (written by `export`, or any OCI tool), read with distrust.

Before a byte is written, the archive is checked against what it declares: member sizes against the
descriptors of its index and manifests, small documents against caps, every artifact complete (config,
layers, subject, pinned references), every tag against the kind its name holds. Blobs are then staged,
verified against their digests and published together, and tags recorded last. A bad archive is one
``InvalidSpecError`` and leaves the store as it was."""

from __future__ import annotations

import json
import lzma
import posixpath
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidSpecError, StorageError
from hub.archive_index import ArchiveEntry, parse_archive_index
from hub.digests import DIGEST_RE, Progress, digest_bytes
from hub.lock import references_of
from hub.manifest import MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, ParsedManifest, parse_config, parse_manifest
from hub.media_types import ANNOTATION_KIND, ANNOTATION_REF_NAME
from hub.names import check_name_kind
from hub.staging import BlobStaging
from hub.store import LocalStore

MAX_INDEX_BYTES = 4 * 1024 * 1024
# What a damaged or truncated archive raises while tarfile reads it (ValueError: a broken sparse map).
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class ArchiveReport:
    artifacts: int
    blobs: int
    bytes: int


class _Archive:
    """The tar's members by role, read on demand; every document checked against its declared size."""

    def __init__(self, tar: tarfile.TarFile, source: Path, store: LocalStore) -> None:
        self.tar, self.source, self.store = tar, source, store
        self.index: tarfile.TarInfo | None = None
        self.blobs: dict[str, tarfile.TarInfo] = {}
        for member in tar:
            name = posixpath.normpath(member.name).lstrip("/")
            if name == "index.json":
                self.index = self._regular(member, self.index)
            elif name.startswith("blobs/sha256/") and DIGEST_RE.match(digest := "sha256:" + name[13:]):
                self.blobs[digest] = self._regular(member, self.blobs.get(digest))

    def _regular(self, member: tarfile.TarInfo, seen: tarfile.TarInfo | None) -> tarfile.TarInfo:
        if seen is not None:
            raise self.error(f"{member.name} appears twice")
        if not member.isreg() or member.issparse():
            raise self.error(f"{member.name} is not a plain file (links and sparse files are refused)")
        return member

    def error(self, message: str) -> InvalidSpecError:
        return InvalidSpecError(f"archive {self.source}: {message}")

    def has(self, digest: str) -> bool:
        return digest in self.blobs or self.store.blobs.has(digest)

    def check_size(self, digest: str, size: int, what: str) -> None:
        member = self.blobs.get(digest)
        actual = member.size if member is not None else self.store.blobs.size(digest)
        if actual != size:
            raise self.error(f"{what} {digest} has {actual:,} bytes; its descriptor says {size:,}")

    def document(self, digest: str, size: int, cap: int, what: str) -> bytes:
        """A manifest or config: from the archive, else the store; capped and verified before use."""
        if size > cap:
            raise self.error(f"{what} {digest} declares {size:,} bytes, more than {cap:,}")
        if digest not in self.blobs:
            if not self.store.blobs.has(digest):
                raise self.error(f"{what} {digest} is missing: the artifact is incomplete")
            return self.store.blobs.read_bytes(digest)
        self.check_size(digest, size, what)
        data = self._read(self.blobs[digest], cap)
        if digest_bytes(data) != digest:
            raise self.error(f"{what} {digest} does not match its digest")
        return data

    def read_index(self) -> list[ArchiveEntry]:
        if self.index is None:
            raise self.error("no index.json: not an OCI image layout")
        if self.index.size > MAX_INDEX_BYTES:
            raise self.error(f"index.json has {self.index.size:,} bytes, more than {MAX_INDEX_BYTES:,}")
        try:
            data = json.loads(self._read(self.index, MAX_INDEX_BYTES))
        except ValueError as exc:
            raise self.error(f"index.json is not JSON: {exc}") from None
        return parse_archive_index(data, self.error)

    def _read(self, member: tarfile.TarInfo, cap: int) -> bytes:
        extracted = self.tar.extractfile(member)
        assert extracted is not None  # a regular member, checked when scanned
        return extracted.read(cap + 1)


@dataclass(frozen=True)
class _Checked:
    entry: ArchiveEntry
    manifest: ParsedManifest
    manifest_bytes: bytes
    config_bytes: bytes


def _check_artifact(archive: _Archive, entry: ArchiveEntry, listed: set[str]) -> _Checked:
    data = archive.document(entry.digest, entry.size, MAX_MANIFEST_BYTES, "manifest")
    manifest = parse_manifest(entry.digest, data)
    config = archive.document(manifest.config_digest, manifest.config_size, MAX_CONFIG_BYTES, "config")
    spec = parse_config(manifest.config_digest, config)
    for layer in manifest.layers:
        if not archive.has(layer.digest):
            raise archive.error(f"artifact {entry.digest} is incomplete: layer {layer.path} is missing")
        archive.check_size(layer.digest, layer.size, f"layer {layer.path}")
    needed = list(references_of(manifest.kind, spec, entry.digest).values())
    needed += [f"subject@{manifest.subject}"] if manifest.subject else []
    for ref in needed:
        digest = ref.rpartition("@")[2]
        if digest not in listed and not archive.store.blobs.has(digest):
            raise archive.error(f"artifact {entry.digest} is incomplete: {ref} is not in the archive")
    return _Checked(entry, manifest, data, config)


def _check_names(store: LocalStore, checked: list[_Checked]) -> None:
    known = list(store.index.snapshot().manifests)
    for item in checked:
        ref = item.entry.ref
        if ref is not None:
            check_name_kind(ref.name, item.manifest.kind, known)
            # Tags within this archive count too: one name may not tag two kinds in it either.
            known.append(
                {"annotations": {ANNOTATION_REF_NAME: str(ref), ANNOTATION_KIND: item.manifest.kind}}
            )


def _check_free_space(archive: _Archive, checked: list[_Checked]) -> None:
    sizes = {
        layer.digest: layer.size
        for item in checked
        for layer in item.manifest.layers
        if not archive.store.blobs.has(layer.digest)
    }
    free = shutil.disk_usage(archive.store.blobs.folder).free
    if sum(sizes.values()) > free:
        raise StorageError(
            f"cannot import {archive.source}: its files need {sum(sizes.values()):,} bytes, {free:,} are free"
        )


def _stage(
    archive: _Archive, staging: BlobStaging, checked: list[_Checked], progress: Progress | None
) -> int:
    """Layers, then configs, then manifests: the order they are published in."""
    total = 0
    for item in checked:
        for layer in item.manifest.layers:
            if not staging.has(layer.digest):
                extracted = archive.tar.extractfile(archive.blobs[layer.digest])
                assert extracted is not None  # a regular member, checked when scanned
                total += staging.stage_stream(extracted, layer.digest, layer.size, progress)  # type: ignore[arg-type]
    for item in checked:
        staging.stage_bytes(item.config_bytes)
    for item in checked:
        staging.stage_bytes(item.manifest_bytes)
    return total


def import_archive(store: LocalStore, source: Path, progress: Progress | None = None) -> ArchiveReport:
    try:
        tar = tarfile.open(source, mode="r:*")  # noqa: SIM115 (closed by the with block below)
    except _READ_ERRORS as exc:
        raise InvalidSpecError(f"cannot read archive {source}: {exc}") from None
    try:
        with tar, store.mutating(), BlobStaging(store.blobs) as staging:
            archive = _Archive(tar, source, store)
            entries = archive.read_index()
            listed = {entry.digest for entry in entries}
            checked = [_check_artifact(archive, entry, listed) for entry in entries]
            _check_names(store, checked)
            _check_free_space(archive, checked)
            total = _stage(archive, staging, checked, progress)
            blobs = len(staging)
            staging.commit()
            for item in checked:
                _record(store, item.entry)
    except _READ_ERRORS as exc:
        raise InvalidSpecError(f"archive {source} is damaged or truncated: {exc}") from None
    return ArchiveReport(len(entries), blobs, total)


def _record(store: LocalStore, entry: ArchiveEntry) -> None:
    if entry.ref is not None:
        store.record(entry.ref.name, entry.digest, [entry.ref.tag or "latest"])
    elif entry.subject_name is not None:
        store.record(entry.subject_name, entry.digest, [])
