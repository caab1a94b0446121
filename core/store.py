"""The ArtifactStore protocol: what engines, retrievers and the gateway need from the hub."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from core.refs import ArtifactRef

ArtifactKind = Literal["model", "prompt", "index", "agent", "pipeline", "dataset", "eval-report"]
ARTIFACT_KINDS: tuple[ArtifactKind, ...] = (
    "model",
    "prompt",
    "index",
    "agent",
    "pipeline",
    "dataset",
    "eval-report",
)


@dataclass(frozen=True, slots=True)
class Artifact:
    """One stored artifact version, as resolved from a reference."""

    name: str  # repository path, e.g. "models/smollm2-135m-instruct"
    kind: ArtifactKind
    digest: str  # manifest digest, "sha256:<hex>"
    spec: Mapping[str, Any]  # the validated spec (config blob), references already pinned to digests
    tags: tuple[str, ...] = ()
    created: str | None = None  # RFC 3339
    size: int = 0  # bytes of config and layers
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def pinned_ref(self) -> str:
        return f"{self.name}@{self.digest}"


@runtime_checkable
class ArtifactStore(Protocol):
    def resolve(self, ref: str | ArtifactRef) -> Artifact:
        """Tag or digest to artifact. Raises ``ArtifactNotFoundError`` / ``InvalidReferenceError``."""
        ...

    def resolve_digest(self, ref: str | ArtifactRef) -> tuple[str, str]:
        """(name, manifest digest) of a reference, without reading the spec: the cheap way to ask
        whether a tag moved."""
        ...

    def list(self, kind: ArtifactKind | None = None) -> Sequence[Artifact]:
        """Every tagged artifact (one entry per tag's target), optionally of one kind."""
        ...

    def materialize(self, ref: str | ArtifactRef) -> Path:
        """A local folder holding the artifact's files, verified against their digests."""
        ...

    def push(
        self,
        kind: ArtifactKind,
        name: str,
        spec: Mapping[str, Any],
        files: Mapping[str, Path] | None = None,
        tags: Sequence[str] = ("latest",),
    ) -> Artifact:
        """Validate ``spec``, pin its references, store files as layers and tag the manifest."""
        ...


@dataclass(frozen=True, slots=True)
class TagEntry:
    """One tag of the hub's index, read without opening the manifest (cheap: the console's listing)."""

    name: str
    tag: str
    kind: ArtifactKind
    digest: str
    created: str | None = None  # when the tag was last set, RFC 3339


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file (layer) of an artifact version."""

    path: str
    media_type: str
    digest: str
    size: int


@runtime_checkable
class BrowsableStore(Protocol):
    """What the web console reads besides ``ArtifactStore``: the listing, files, referrers and locks."""

    def tag_entries(self) -> Sequence[TagEntry]:
        """Every tag in the hub, from the index alone."""
        ...

    def files(self, digest: str) -> Sequence[ArtifactFile]:
        """The files of the manifest ``digest``."""
        ...

    def read_file(self, digest: str, path: str, max_bytes: int) -> bytes:
        """One file of the manifest ``digest``, verified. Raises ``ArtifactNotFoundError`` when it has no
        such file, ``InvalidRequestError`` when it is larger than ``max_bytes``."""
        ...

    def referrers(self, digest: str) -> Sequence[Artifact]:
        """Artifacts whose OCI subject is ``digest`` (eval reports)."""
        ...

    def lock_of(self, ref: str) -> Mapping[str, Any]:
        """The composition lock of ``ref``: ``{"ref", "composition_digest", "lock", "names"}``."""
        ...
