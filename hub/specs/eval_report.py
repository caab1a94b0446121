"""An eval report: metrics measured against an exact target digest (stored as the OCI `subject`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from core.store import ArtifactKind
from hub.specs.base import Ref, RelativePath, SpecBase

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"


class EvalReportSpec(SpecBase):
    REFERENCE_FIELDS: ClassVar[dict[str, tuple[ArtifactKind, ...]]] = {
        "target": ("pipeline", "model", "agent", "index", "prompt"),
        "dataset": ("dataset",),
    }

    target: Ref
    dataset: Ref | None = None
    composition_digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    metrics: dict[str, float] = Field(default_factory=dict)
    parameters: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    files: list[RelativePath] = Field(default_factory=list)
