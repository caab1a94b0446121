"""Garbage collection: remove blobs nothing live reaches.

Live: every tagged manifest; manifests their specs reference by digest (transitively); their
config, layers and subject; referrers (untagged index entries) whose subject is live."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import IntegrityError
from core.refs import ArtifactRef
from hub.digests import hex_of
from hub.index_file import Descriptor
from hub.lock import references_of
from hub.media_types import ANNOTATION_REF_NAME, ANNOTATION_SUBJECT
from hub.store import LocalStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcReport:
    removed_blobs: int
    freed_bytes: int
    removed_referrer_entries: int
    removed_unpacked: int
    removed_temp_files: int


def _mark(store: LocalStore, roots: list[str], live: set[str]) -> None:
    pending = list(roots)
    while pending:
        digest = pending.pop()
        if digest in live:
            continue
        live.add(digest)
        # An unreadable live manifest means the graph is uncertain: stop before deleting anything.
        manifest = store.manifest(digest)
        live.update(manifest.blob_digests)
        if manifest.subject:
            pending.append(manifest.subject)
        for pinned in references_of(manifest.kind, store.spec_of(manifest), digest).values():
            target = ArtifactRef.parse(pinned).digest
            if target is None:
                raise IntegrityError(f"artifact {digest} holds an unpinned reference {pinned}")
            pending.append(target)


def _annotations(descriptor: Descriptor) -> dict[str, str]:
    return descriptor.get("annotations") or {}


def collect(store: LocalStore, keep: Iterable[str] = ()) -> GcReport:
    """``keep``: blob digests live besides what artifacts reach (uploaded files of the gateway)."""
    with store.exclusive():
        descriptors = list(store.index.snapshot().manifests)
        tagged = [d for d in descriptors if ANNOTATION_REF_NAME in _annotations(d)]
        referrers = [d for d in descriptors if ANNOTATION_REF_NAME not in _annotations(d)]
        live: set[str] = set(keep)
        _mark(store, [d["digest"] for d in tagged], live)
        # Referrers live while their subject lives; a live referrer may keep another subject alive.
        kept: set[int] = set()
        changed = True
        while changed:
            changed = False
            for i, descriptor in enumerate(referrers):
                if i not in kept and _annotations(descriptor).get(ANNOTATION_SUBJECT) in live:
                    kept.add(i)
                    _mark(store, [descriptor["digest"]], live)
                    changed = True
        dead = {d["digest"] for i, d in enumerate(referrers) if i not in kept} - live
        if dead:
            store.index.update(
                lambda manifests: [
                    d for d in manifests if ANNOTATION_REF_NAME in _annotations(d) or d["digest"] not in dead
                ]
            )
        removed = freed = 0
        for digest in list(store.blobs.digests()):
            if digest not in live:
                freed += store.blobs.delete(digest)
                removed += 1
        temps = 0
        for temp in store.blobs.temp_files():
            temp.unlink(missing_ok=True)
            temps += 1
        unpacked = 0
        if store.cache_dir.is_dir():
            live_hex = {hex_of(d) for d in live}
            for child in store.cache_dir.iterdir():
                if child.is_dir() and (child.name.startswith(".tmp-") or child.name not in live_hex):
                    shutil.rmtree(child, ignore_errors=True)
                    unpacked += 1
    logger.info("gc removed %d blobs (%d bytes)", removed, freed)
    return GcReport(removed, freed, len(dead), unpacked, temps)
