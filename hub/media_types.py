"""OCI and CNCF ModelPack media types, and the artifact type of each aihub kind."""

from __future__ import annotations

from core.errors import InvalidSpecError
from core.store import ARTIFACT_KINDS, ArtifactKind

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY_JSON = "application/vnd.oci.empty.v1+json"
OCI_LAYOUT_VERSION = "1.0.0"

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"
# Local bookkeeping on index.json descriptors (not part of any manifest's content).
ANNOTATION_SUBJECT = "vnd.aihub.subject"
ANNOTATION_KIND = "vnd.aihub.kind"
ANNOTATION_NAME = "vnd.aihub.name"

# CNCF ModelPack (model-spec v1).
MODEL_ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
MODEL_WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
MODEL_WEIGHT_CONFIG = "application/vnd.cncf.model.weight.config.v1.raw"
MODEL_DOC = "application/vnd.cncf.model.doc.v1.raw"
MODEL_CODE = "application/vnd.cncf.model.code.v1.raw"
MODEL_DATASET = "application/vnd.cncf.model.dataset.v1.raw"

FILE_LAYER = "application/vnd.aihub.file.v1"

_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".onnx", ".ckpt", ".h5", ".msgpack")
_DOC_SUFFIXES = (".md", ".txt", ".rst", ".pdf")
_CODE_SUFFIXES = (".py",)
_LICENSE_NAMES = ("license", "licence", "notice")


def artifact_type(kind: ArtifactKind) -> str:
    if kind == "model":
        return MODEL_ARTIFACT_TYPE
    return f"application/vnd.aihub.{kind}.v1+json"


def config_media_type(kind: ArtifactKind) -> str:
    if kind == "model":
        return MODEL_CONFIG
    return f"application/vnd.aihub.{kind}.config.v1+json"


def kind_of_artifact_type(value: str | None) -> ArtifactKind:
    for kind in ARTIFACT_KINDS:
        if artifact_type(kind) == value:
            return kind
    raise InvalidSpecError(f"not an aihub artifact: artifactType {value!r}")


def layer_media_type(kind: ArtifactKind, relative_path: str) -> str:
    """ModelPack layer types for model files; a plain file type for other kinds."""
    if kind != "model":
        return FILE_LAYER
    lower = relative_path.lower()
    base = lower.rsplit("/", 1)[-1]
    if lower.endswith(_WEIGHT_SUFFIXES):
        return MODEL_WEIGHT
    if base.startswith(_LICENSE_NAMES) or lower.endswith(_DOC_SUFFIXES):
        return MODEL_DOC
    if lower.endswith(_CODE_SUFFIXES):
        return MODEL_CODE
    return MODEL_WEIGHT_CONFIG
