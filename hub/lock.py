"""Locks: an artifact and everything it references, transitively, pinned to digests.

The composition digest is the sha256 of the lock's canonical JSON. Names are kept beside it, not in
it, so a mirror under another namespace computes the same composition digest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import IntegrityError
from core.refs import ArtifactRef
from core.store import ArtifactKind
from hub.digests import digest_bytes
from hub.manifest import canonical_json
from hub.specs import validate_spec
from hub.store import LocalStore


@dataclass(frozen=True)
class LockEntry:
    name: str
    kind: ArtifactKind
    digest: str
    references: dict[str, str] = field(default_factory=dict)  # field path → digest

    def canonical(self) -> dict[str, Any]:
        return {"kind": self.kind, "references": dict(sorted(self.references.items()))}


@dataclass(frozen=True)
class Lock:
    ref: str  # as asked for
    root: str  # manifest digest of the artifact asked for
    entries: tuple[LockEntry, ...]  # sorted by digest

    def canonical(self) -> dict[str, Any]:
        return {"root": self.root, "artifacts": {entry.digest: entry.canonical() for entry in self.entries}}

    def canonical_json(self) -> bytes:
        return canonical_json(self.canonical())

    @property
    def composition_digest(self) -> str:
        return digest_bytes(self.canonical_json())

    def pinned_refs(self) -> dict[str, str]:
        return {entry.digest: f"{entry.name}@{entry.digest}" for entry in self.entries}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "composition_digest": self.composition_digest,
            "lock": self.canonical(),
            "names": {entry.digest: entry.name for entry in self.entries},
        }


def references_of(kind: ArtifactKind, spec: dict[str, Any], digest: str) -> dict[str, str]:
    """field path → pinned reference, for a spec as stored (references already pinned)."""
    try:
        parsed = validate_spec(kind, spec)
    except Exception as exc:
        raise IntegrityError(f"stored spec of {digest} no longer validates: {exc}") from None
    return {".".join(str(p) for p in path): ref for path, ref, _ in parsed.references()}


def resolve_lock(store: LocalStore, ref: str | ArtifactRef) -> Lock:
    name, root = store.resolve_digest(ref)
    entries: dict[str, LockEntry] = {}
    pending = [(name, root)]
    while pending:
        entry_name, digest = pending.pop()
        if digest in entries:
            continue
        manifest = store.manifest(digest)
        spec = store.spec_of(manifest)
        references: dict[str, str] = {}
        for path, pinned in references_of(manifest.kind, spec, digest).items():
            parsed = ArtifactRef.parse(pinned)
            if parsed.digest is None:
                raise IntegrityError(f"artifact {digest}: reference {path} is not pinned to a digest")
            references[path] = parsed.digest
            pending.append((parsed.name, parsed.digest))
        entries[digest] = LockEntry(entry_name, manifest.kind, digest, references)
    return Lock(ref=str(ref), root=root, entries=tuple(entries[d] for d in sorted(entries)))
