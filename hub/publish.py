"""Pushing an artifact: validate its spec, pin its references to digests, store files, config, manifest."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from core.errors import ArtifactNotFoundError, InvalidReferenceError, InvalidSpecError
from core.refs import ArtifactRef, check_name
from core.store import Artifact, ArtifactKind
from hub.blobs import BlobStore
from hub.digests import Progress
from hub.manifest import Layer, build_config, build_manifest
from hub.media_types import OCI_MANIFEST, layer_media_type
from hub.names import check_namespace
from hub.specs import SpecBase, check_kind, set_at, validate_spec


class PublishTarget(Protocol):
    """What a push needs of the store (``hub.store.LocalStore``)."""

    @property
    def blobs(self) -> BlobStore: ...

    def mutating(self) -> AbstractContextManager[None]: ...

    def resolve(self, ref: str | ArtifactRef) -> Artifact: ...

    def record(self, name: str, digest: str, tags: Sequence[str]) -> None: ...


logger = logging.getLogger(__name__)


def pin_references(store: PublishTarget, kind: ArtifactKind, spec: SpecBase) -> SpecBase:
    """Every reference becomes ``name@sha256:…``; a reference that does not resolve is refused."""
    data = spec.model_dump(mode="json")
    for path, ref, kinds in spec.references():
        where = ".".join(str(part) for part in path)
        try:
            target = store.resolve(ref)
        except (ArtifactNotFoundError, InvalidReferenceError) as exc:
            raise InvalidSpecError(
                f"invalid {kind} spec: {where}: {ref!r} does not resolve ({exc})"
            ) from None
        if target.kind not in kinds:
            raise InvalidSpecError(
                f"invalid {kind} spec: {where}: {ref!r} is a {target.kind}, expected {' or '.join(kinds)}"
            )
        set_at(data, path, target.pinned_ref)
    return validate_spec(kind, data)


def _subject(store: PublishTarget, kind: ArtifactKind, spec: SpecBase) -> dict[str, Any] | None:
    if kind != "eval-report":
        return None
    digest = ArtifactRef.parse(spec.target).digest  # type: ignore[attr-defined]
    assert digest is not None  # pinned above
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": store.blobs.size(digest)}


def _check_files(kind: ArtifactKind, spec: SpecBase, files: Mapping[str, Path]) -> list[tuple[str, Path]]:
    declared = spec.file_paths()
    missing = [path for path in declared if path not in files]
    extra = sorted(set(files) - set(declared))
    if missing or extra:
        raise InvalidSpecError(
            f"invalid {kind} spec: files: declared {missing or extra} "
            + ("not provided" if missing else "provided but not declared in `files`")
        )
    checked = []
    for relative in declared:
        path = Path(files[relative])
        if not path.is_file():
            raise InvalidSpecError(f"invalid {kind} spec: files: {relative!r} is not a file ({path})")
        checked.append((relative, path))
    return checked


def push_artifact(
    store: PublishTarget,
    kind: str,
    name: str,
    spec_data: Mapping[str, Any],
    files: Mapping[str, Path],
    tags: Sequence[str],
    progress: Progress | None = None,
) -> str:
    checked_kind = check_kind(kind)
    check_name(name)
    check_namespace(name, checked_kind)  # before any blob is written; record() checks the tags' kind
    for tag in tags:
        ArtifactRef.parse(f"{name}:{tag}")
    spec = validate_spec(checked_kind, spec_data)
    sources = _check_files(checked_kind, spec, files)
    with store.mutating():
        spec = pin_references(store, checked_kind, spec)
        layers = []
        for relative, path in sources:
            digest, size = store.blobs.put_file(path, progress)
            layers.append(Layer(relative, layer_media_type(checked_kind, relative), digest, size))
        config = build_config(checked_kind, spec.model_dump(mode="json", exclude_defaults=False), layers)
        config_digest = store.blobs.put_bytes(config)
        subject = _subject(store, checked_kind, spec)
        manifest = build_manifest(checked_kind, config_digest, len(config), layers, subject)
        digest = store.blobs.put_bytes(manifest)
        store.record(name, digest, tags)
    logger.info("pushed %s %s@%s", checked_kind, name, digest)
    return digest
