"""The ``index.json`` of an archive being imported, checked field by field: it comes from elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidReferenceError, InvalidSpecError
from core.refs import ArtifactRef, check_name
from hub.digests import DIGEST_RE
from hub.media_types import ANNOTATION_NAME, ANNOTATION_REF_NAME, ANNOTATION_SUBJECT, OCI_MANIFEST


@dataclass(frozen=True)
class ArchiveEntry:
    digest: str  # of a manifest
    size: int
    ref: ArtifactRef | None  # name:tag to record, for a tagged root
    subject_name: str | None  # the name a referrer (an eval report) is kept under


def _entry(item: Any, where: str) -> ArchiveEntry:
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object")
    digest, size = item.get("digest"), item.get("size")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise ValueError(f"{where}.digest {digest!r} is not a sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"{where}.size {size!r} is not a byte count")
    if item.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
        raise ValueError(f"{where}.mediaType {item.get('mediaType')!r} is not an OCI image manifest")
    annotations = item.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise ValueError(f"{where}.annotations must map names to strings")
    ref = subject_name = None
    if annotations.get(ANNOTATION_REF_NAME):
        ref = ArtifactRef.parse(annotations[ANNOTATION_REF_NAME])
        if ref.tag is None:
            raise ValueError(f"{where}: {ANNOTATION_REF_NAME} {ref} is not a name:tag")
    elif annotations.get(ANNOTATION_SUBJECT):
        subject_name = check_name(annotations.get(ANNOTATION_NAME) or "imported")
    return ArchiveEntry(digest, size, ref, subject_name)


def parse_archive_index(data: Any, error: Callable[[str], InvalidSpecError]) -> list[ArchiveEntry]:
    manifests = data.get("manifests") if isinstance(data, dict) else None
    if not isinstance(manifests, list):
        raise error("index.json has no manifests list")
    try:
        return [_entry(item, f"index.json manifests[{i}]") for i, item in enumerate(manifests)]
    except (ValueError, InvalidReferenceError) as exc:
        raise error(str(exc)) from None
