"""LocalStore: the hub on disk, an OCI image layout. Implements core.store.ArtifactStore."""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from core.errors import ArtifactNotFoundError, IntegrityError, InvalidReferenceError, InvalidRequestError
from core.refs import ArtifactRef
from core.store import ARTIFACT_KINDS, Artifact, ArtifactFile, ArtifactKind, TagEntry
from hub.atomic import file_lock
from hub.blobs import BlobStore
from hub.digests import Progress
from hub.index_file import Descriptor, IndexFile
from hub.manifest import ParsedManifest, parse_config, parse_manifest
from hub.materialize import materialize
from hub.media_types import (
    ANNOTATION_CREATED,
    ANNOTATION_KIND,
    ANNOTATION_NAME,
    ANNOTATION_REF_NAME,
    ANNOTATION_SUBJECT,
    OCI_MANIFEST,
    artifact_type,
)
from hub.names import check_name_kind
from hub.publish import push_artifact
from hub.settings import HubSettings

logger = logging.getLogger(__name__)
GC_LOCK = ".gc.lock"


def parse_ref(ref: str | ArtifactRef) -> ArtifactRef:
    return ref if isinstance(ref, ArtifactRef) else ArtifactRef.parse(ref)


class LocalStore:
    """Blobs verified on every read; tags in index.json; mutations under file locks."""

    def __init__(self, settings: HubSettings | Path, cache_dir: Path | None = None) -> None:
        if isinstance(settings, HubSettings):
            root, default_cache = settings.root, settings.cache_dir
        else:
            root, default_cache = Path(settings), Path(settings) / ".cache"
        self.root = root
        self.cache_dir = cache_dir or default_cache
        self.blobs = BlobStore(root)
        self.index = IndexFile(root)
        self.blobs.folder.mkdir(parents=True, exist_ok=True)
        self.index.ensure()

    # --- locks -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def mutating(self) -> Iterator[None]:
        """Held (shared) by every writer; gc takes it exclusively so it never sweeps a push in flight."""
        with file_lock(self.root / GC_LOCK, shared=True):
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with file_lock(self.root / GC_LOCK):
            yield

    # --- reading ---------------------------------------------------------------------------------

    def resolve_digest(self, ref: str | ArtifactRef) -> tuple[str, str]:
        """(name, manifest digest): the fast path (a cached index.json lookup for tags)."""
        parsed = parse_ref(ref)
        if parsed.digest is not None:
            if not self.blobs.has(parsed.digest):
                raise ArtifactNotFoundError(f"artifact {parsed} not found in the hub")
            return parsed.name, parsed.digest
        descriptor = self.index.snapshot().by_ref.get(f"{parsed.name}:{parsed.tag}")
        if descriptor is None:
            raise ArtifactNotFoundError(f"artifact {parsed} not found in the hub")
        return parsed.name, descriptor["digest"]

    def manifest(self, digest: str) -> ParsedManifest:
        return parse_manifest(digest, self.blobs.read_bytes(digest))

    def manifest_bytes(self, digest: str) -> bytes:
        return self.blobs.read_bytes(digest)

    def spec_of(self, manifest: ParsedManifest) -> dict[str, Any]:
        return parse_config(manifest.config_digest, self.blobs.read_bytes(manifest.config_digest))

    def check_complete(self, digest: str) -> ParsedManifest:
        """The manifest, once its config reads as a spec and every layer is stored at its size."""
        manifest = self.manifest(digest)
        self.spec_of(manifest)
        for layer in manifest.layers:
            where = f"artifact {digest}: layer {layer.path} ({layer.digest})"
            if not self.blobs.has(layer.digest):
                raise IntegrityError(f"{where} is missing: the artifact is incomplete")
            if self.blobs.size(layer.digest) != layer.size:
                raise IntegrityError(
                    f"{where} is corrupt: it does not have the {layer.size:,} bytes declared"
                )
        return manifest

    def resolve(self, ref: str | ArtifactRef) -> Artifact:
        name, digest = self.resolve_digest(ref)
        return self._artifact(name, digest, self.index.snapshot().manifests)

    def _artifact(self, name: str, digest: str, descriptors: Sequence[Descriptor]) -> Artifact:
        manifest = self.manifest(digest)
        tags, created = [], None
        for descriptor in descriptors:
            if descriptor.get("digest") != digest:
                continue
            annotations = descriptor.get("annotations") or {}
            created = created or annotations.get(ANNOTATION_CREATED)
            ref_name = annotations.get(ANNOTATION_REF_NAME, "")
            repo, _, tag = ref_name.rpartition(":")
            if repo == name:
                tags.append(tag)
        annotations = dict(manifest.raw.get("annotations") or {})
        if manifest.subject:
            annotations[ANNOTATION_SUBJECT] = manifest.subject
        return Artifact(
            name=name,
            kind=manifest.kind,
            digest=digest,
            spec=self.spec_of(manifest),
            tags=tuple(sorted(tags)),
            created=created,
            size=manifest.size,
            annotations=annotations,
        )

    def list(self, kind: ArtifactKind | None = None) -> builtins.list[Artifact]:
        descriptors = self.index.snapshot().manifests
        seen: dict[tuple[str, str], Artifact] = {}
        for descriptor in descriptors:
            ref_name = (descriptor.get("annotations") or {}).get(ANNOTATION_REF_NAME)
            if not ref_name:
                continue
            name = ref_name.rpartition(":")[0]
            key = (name, descriptor["digest"])
            if key in seen:
                continue
            if kind is not None and descriptor.get("artifactType") != artifact_type(kind):
                continue
            seen[key] = self._artifact(name, descriptor["digest"], descriptors)
        return sorted(seen.values(), key=lambda a: (a.name, a.tags))

    def referrers(self, digest: str) -> builtins.list[Artifact]:
        """Artifacts whose OCI ``subject`` is ``digest`` (eval reports of a pipeline, say)."""
        found: dict[str, Artifact] = {}
        descriptors = self.index.snapshot().manifests
        for descriptor in descriptors:
            annotations = descriptor.get("annotations") or {}
            if annotations.get(ANNOTATION_SUBJECT) == digest and descriptor["digest"] not in found:
                name = annotations.get(ANNOTATION_NAME, "")
                found[descriptor["digest"]] = self._artifact(name, descriptor["digest"], descriptors)
        return list(found.values())

    # --- browsing (core.store.BrowsableStore: the web console) ----------------------------------

    def tag_entries(self) -> builtins.list[TagEntry]:
        entries = []
        for descriptor in self.index.snapshot().manifests:
            annotations = descriptor.get("annotations") or {}
            name, _, tag = (annotations.get(ANNOTATION_REF_NAME) or "").rpartition(":")
            kind = annotations.get(ANNOTATION_KIND)
            if name and kind in ARTIFACT_KINDS:
                created = annotations.get(ANNOTATION_CREATED)
                entries.append(TagEntry(name, tag, cast(ArtifactKind, kind), descriptor["digest"], created))
        return entries

    def files(self, digest: str) -> builtins.list[ArtifactFile]:
        return [
            ArtifactFile(layer.path, layer.media_type, layer.digest, layer.size)
            for layer in self.manifest(digest).layers
        ]

    def read_file(self, digest: str, path: str, max_bytes: int) -> bytes:
        for layer in self.manifest(digest).layers:
            if layer.path == path:
                if layer.size > max_bytes:
                    raise InvalidRequestError(f"{path} has {layer.size:,} bytes, more than {max_bytes:,}")
                return self.blobs.read_bytes(layer.digest)
        raise ArtifactNotFoundError(f"artifact {digest} has no file {path!r}")

    def lock_of(self, ref: str) -> dict[str, Any]:
        from hub.lock import resolve_lock  # hub.lock imports this module

        return resolve_lock(self, ref).to_dict()

    # --- writing ---------------------------------------------------------------------------------

    def push(
        self,
        kind: ArtifactKind,
        name: str,
        spec: Mapping[str, Any],
        files: Mapping[str, Path] | None = None,
        tags: Sequence[str] = ("latest",),
        progress: Progress | None = None,
    ) -> Artifact:
        digest = push_artifact(self, kind, name, spec, files or {}, tags, progress)
        return self.resolve(f"{name}@{digest}")

    def record(self, name: str, digest: str, tags: Sequence[str]) -> None:
        """Point ``tags`` of ``name`` at a stored manifest; keep a referrer entry if it has a subject."""
        manifest = self.manifest(digest)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        size = self.blobs.size(digest)

        def entry(ref_name: str | None) -> Descriptor:
            annotations = {ANNOTATION_CREATED: now, ANNOTATION_KIND: manifest.kind, ANNOTATION_NAME: name}
            if ref_name:
                annotations[ANNOTATION_REF_NAME] = ref_name
            if manifest.subject:
                annotations[ANNOTATION_SUBJECT] = manifest.subject
            return {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": size,
                "artifactType": artifact_type(manifest.kind),
                "annotations": annotations,
            }

        ref_names = {f"{name}:{ArtifactRef.parse(f'{name}:{tag}').tag}" for tag in tags}

        def change(manifests: list[Descriptor]) -> list[Descriptor]:
            if ref_names:  # checked under the index lock, so two writers cannot race past it
                check_name_kind(name, manifest.kind, manifests)
            kept = [
                d for d in manifests if (d.get("annotations") or {}).get(ANNOTATION_REF_NAME) not in ref_names
            ]
            if manifest.subject and not any(
                d["digest"] == digest and ANNOTATION_REF_NAME not in (d.get("annotations") or {})
                for d in kept
            ):
                kept.append(entry(None))
            kept.extend(entry(ref_name) for ref_name in sorted(ref_names))
            return kept

        self.index.update(change)

    def tag(self, ref: str | ArtifactRef, new_ref: str | ArtifactRef) -> Artifact:
        target = parse_ref(new_ref)
        if target.tag is None:
            raise InvalidReferenceError(f"{target} is not a tag reference (name:tag)")
        with self.mutating():
            _, digest = self.resolve_digest(ref)
            self.check_complete(digest)  # verified before anything points at it
            self.record(target.name, digest, [target.tag])
        return self.resolve(target)

    def untag(self, ref: str | ArtifactRef) -> None:
        parsed = parse_ref(ref)
        if parsed.tag is None:
            raise InvalidReferenceError(f"{parsed} is not a tag reference (name:tag)")
        ref_name = f"{parsed.name}:{parsed.tag}"
        if ref_name not in self.index.snapshot().by_ref:
            raise ArtifactNotFoundError(f"tag {ref_name} not found in the hub")
        with self.mutating():
            self.index.update(
                lambda manifests: [
                    d for d in manifests if (d.get("annotations") or {}).get(ANNOTATION_REF_NAME) != ref_name
                ]
            )

    def materialize(self, ref: str | ArtifactRef) -> Path:
        _, digest = self.resolve_digest(ref)
        return materialize(self, digest)
