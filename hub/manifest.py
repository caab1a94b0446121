"""Building and reading aihub manifests: artifactType per kind, a JSON config (the spec), file layers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import IntegrityError, InvalidSpecError
from core.store import ArtifactKind
from hub.digests import DIGEST_RE
from hub.media_types import (
    ANNOTATION_TITLE,
    OCI_MANIFEST,
    artifact_type,
    config_media_type,
    kind_of_artifact_type,
)

# Manifests and configs are read whole into memory; files travel as layers. Far above any real spec,
# far below what a hostile archive or registry could make us hold.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace: the same value always gives the same bytes (and digest)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Layer:
    path: str  # relative path, the layer's title
    media_type: str
    digest: str
    size: int

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "annotations": {ANNOTATION_TITLE: self.path},
        }


def build_config(kind: ArtifactKind, spec: Mapping[str, Any], layers: Sequence[Layer]) -> bytes:
    config: dict[str, Any] = {"kind": kind, "spec": dict(spec)}
    if kind == "model":
        # The fields ModelPack requires, so ModelPack-aware tools can read the config too.
        config["descriptor"] = {"name": spec.get("family") or "", "version": ""}
        config["config"] = {"format": spec.get("format", ""), "architecture": spec.get("architecture") or ""}
        config["modelfs"] = {"type": "layers", "diffIds": [layer.digest for layer in layers]}
    data = canonical_json(config)
    if len(data) > MAX_CONFIG_BYTES:
        raise InvalidSpecError(
            f"invalid {kind} spec: {len(data):,} bytes of JSON, more than {MAX_CONFIG_BYTES:,}; "
            "put large content in `files`"
        )
    return data


def build_manifest(
    kind: ArtifactKind,
    config_digest: str,
    config_size: int,
    layers: Sequence[Layer],
    subject: Mapping[str, Any] | None = None,
) -> bytes:
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type(kind),
        "config": {"mediaType": config_media_type(kind), "digest": config_digest, "size": config_size},
        "layers": [layer.descriptor() for layer in layers],
    }
    if subject is not None:
        manifest["subject"] = dict(subject)
    return canonical_json(manifest)


@dataclass(frozen=True)
class ParsedManifest:
    kind: ArtifactKind
    config_digest: str
    config_size: int
    layers: tuple[Layer, ...]
    subject: str | None
    raw: Mapping[str, Any]

    @property
    def blob_digests(self) -> list[str]:
        return [self.config_digest, *(layer.digest for layer in self.layers)]

    @property
    def size(self) -> int:
        return self.config_size + sum(layer.size for layer in self.layers)


def parse_manifest(digest: str, data: bytes) -> ParsedManifest:
    if len(data) > MAX_MANIFEST_BYTES:
        raise IntegrityError(f"manifest {digest} has {len(data):,} bytes, more than {MAX_MANIFEST_BYTES:,}")
    try:
        raw = json.loads(data)
        kind = kind_of_artifact_type(raw.get("artifactType"))
        layers = tuple(
            Layer(
                path=(item.get("annotations") or {}).get(ANNOTATION_TITLE) or item["digest"],
                media_type=item["mediaType"],
                digest=item["digest"],
                size=int(item["size"]),
            )
            for item in raw.get("layers", [])
        )
        subject = raw.get("subject")
        described = [(raw["config"]["digest"], int(raw["config"]["size"]))]
        for blob, size in described + [(layer.digest, layer.size) for layer in layers]:
            if not isinstance(blob, str) or not DIGEST_RE.match(blob) or size < 0:
                raise ValueError(f"bad descriptor {blob!r} of size {size}")
        return ParsedManifest(
            kind=kind,
            config_digest=raw["config"]["digest"],
            config_size=int(raw["config"]["size"]),
            layers=layers,
            subject=subject["digest"] if isinstance(subject, dict) else None,
            raw=raw,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"manifest {digest} is not a valid aihub manifest: {exc}") from None


def parse_config(digest: str, data: bytes) -> dict[str, Any]:
    if len(data) > MAX_CONFIG_BYTES:
        raise IntegrityError(f"config {digest} has {len(data):,} bytes, more than {MAX_CONFIG_BYTES:,}")
    try:
        config = json.loads(data)
        spec = config["spec"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"config {digest} is not a valid aihub config: {exc}") from None
    if not isinstance(spec, dict):
        raise IntegrityError(f"config {digest} holds no spec mapping")
    return spec
