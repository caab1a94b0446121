"""Validated specs of each artifact kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from core.errors import InvalidSpecError
from core.store import ARTIFACT_KINDS, ArtifactKind
from hub.specs.agent import AgentSpec
from hub.specs.base import SpecBase, set_at
from hub.specs.dataset import DatasetSpec
from hub.specs.eval_report import EvalReportSpec
from hub.specs.index import IndexSpec
from hub.specs.model import ModelSpec
from hub.specs.pipeline import PipelineSpec
from hub.specs.prompt import PromptSpec

SPEC_TYPES: dict[ArtifactKind, type[SpecBase]] = {
    "model": ModelSpec,
    "prompt": PromptSpec,
    "index": IndexSpec,
    "agent": AgentSpec,
    "pipeline": PipelineSpec,
    "dataset": DatasetSpec,
    "eval-report": EvalReportSpec,
}

__all__ = [
    "SPEC_TYPES",
    "AgentSpec",
    "DatasetSpec",
    "EvalReportSpec",
    "IndexSpec",
    "ModelSpec",
    "PipelineSpec",
    "PromptSpec",
    "SpecBase",
    "check_kind",
    "set_at",
    "validate_spec",
]


def check_kind(kind: str) -> ArtifactKind:
    if kind not in ARTIFACT_KINDS:
        raise InvalidSpecError(f"unknown artifact kind {kind!r}; known kinds: {', '.join(ARTIFACT_KINDS)}")
    return kind


def validate_spec(kind: str, data: Mapping[str, Any]) -> SpecBase:
    """One-line errors: the first problem with its field path."""
    spec_type = SPEC_TYPES[check_kind(kind)]
    try:
        return spec_type.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidSpecError(f"invalid {kind} spec: {where}: {first['msg']}{more}") from None
