"""Which kind a name may hold: a well-known namespace fixes it, and a tagged name keeps the kind it has.

Without this, a tag could make ``models/x:latest`` a prompt and every caller of that model break."""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import ConflictError, InvalidReferenceError
from core.store import ArtifactKind
from hub.index_file import Descriptor
from hub.media_types import ANNOTATION_KIND, ANNOTATION_REF_NAME, artifact_type

# The namespaces aihub itself names artifacts under (CLI, demo, evals); other namespaces hold any kind.
NAMESPACE_KINDS: dict[str, ArtifactKind] = {
    "models": "model",
    "adapters": "model",
    "prompts": "prompt",
    "indexes": "index",
    "indices": "index",
    "agents": "agent",
    "pipelines": "pipeline",
    "datasets": "dataset",
    "evals": "eval-report",
}


def check_namespace(name: str, kind: ArtifactKind) -> None:
    namespace, sep, _ = name.partition("/")
    expected = NAMESPACE_KINDS.get(namespace) if sep else None
    if expected is not None and expected != kind:
        raise InvalidReferenceError(
            f"{name} is in the {namespace}/ namespace, which holds {expected} artifacts, not a {kind}",
            code="kind_mismatch",
        )


def bound_kind(name: str, descriptors: Iterable[Descriptor]) -> str | None:
    """The kind that the tags of ``name`` point at (an artifactType or kind annotation), if tagged."""
    for descriptor in descriptors:
        annotations = descriptor.get("annotations") or {}
        ref_name = annotations.get(ANNOTATION_REF_NAME)
        if isinstance(ref_name, str) and ref_name.rpartition(":")[0] == name:
            return annotations.get(ANNOTATION_KIND) or descriptor.get("artifactType")
    return None


def check_name_kind(name: str, kind: ArtifactKind, descriptors: Iterable[Descriptor]) -> None:
    """Refuse tagging ``name`` onto a ``kind`` artifact when the namespace or its other tags disagree."""
    check_namespace(name, kind)
    bound = bound_kind(name, descriptors)
    if bound is not None and bound not in (kind, artifact_type(kind)):
        raise ConflictError(
            f"{name} already tags {bound} artifacts; it cannot also tag a {kind} "
            "(untag it first, or choose another name)",
            code="kind_mismatch",
        )
