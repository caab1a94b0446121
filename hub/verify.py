"""verify: every blob matches its digest, every manifest is complete, unpacked copies are untouched."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.errors import AihubError
from core.refs import ArtifactRef
from hub.lock import resolve_lock
from hub.materialize import _remove, verify_materialized
from hub.store import LocalStore

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    checked_blobs: int = 0
    checked_manifests: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_manifest(store: LocalStore, digest: str, report: VerifyReport, blobs_done: set[str]) -> None:
    try:
        manifest = store.manifest(digest)
        store.spec_of(manifest)
    except AihubError as exc:
        report.problems.append(exc.message)
        return
    report.checked_manifests += 1
    blobs_done.update((digest, manifest.config_digest))
    for blob in manifest.layers:
        if blob.digest in blobs_done:
            continue
        blobs_done.add(blob.digest)
        try:
            store.blobs.check(blob.digest)
            report.checked_blobs += 1
        except AihubError as exc:
            report.problems.append(exc.message)
    problems = verify_materialized(store, digest)
    if problems:
        report.problems.extend(problems)
        # A tampered cache copy is dropped so the next materialize() unpacks a verified one.
        _remove(store.cache_dir / digest.split(":", 1)[1])


def verify_store(store: LocalStore, ref: str | ArtifactRef | None = None) -> VerifyReport:
    report = VerifyReport()
    done: set[str] = set()
    if ref is not None:
        try:
            lock = resolve_lock(store, ref)
        except AihubError as exc:
            report.problems.append(exc.message)
            return report
        for entry in lock.entries:
            _check_manifest(store, entry.digest, report, done)
        return report
    for descriptor in store.index.snapshot().manifests:
        if descriptor["digest"] not in done:
            _check_manifest(store, descriptor["digest"], report, done)
    for digest in store.blobs.digests():
        if digest in done:
            continue
        try:
            store.blobs.check(digest)
            report.checked_blobs += 1
        except AihubError as exc:
            report.problems.append(exc.message)
    return report
