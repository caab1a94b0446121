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
