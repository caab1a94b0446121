"""Builds embedders and retrievers for the composition roots (``aihub/``, ``ray_cluster/``)."""

from __future__ import annotations

from pathlib import Path

from core.embedder import Embedder
from retrievers.settings import RetrieverSettings


def build_embedder(
    model_id: str, folder: Path, settings: RetrieverSettings, *, digest: str | None = None
) -> Embedder:
    """A sentence-transformers embedder from a local model folder (the hub's materialized copy)."""
    from retrievers.minilm_embedder import MiniLMEmbedder

    return MiniLMEmbedder(model_id, folder, settings, digest=digest)
