"""Build an index in a temporary folder and push it to the hub: the one way every caller does it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.embedder import Embedder
from core.store import Artifact, ArtifactStore
from retrievers.documents import Document
from retrievers.index_builder import BuildOptions, PreviousVersion, Progress, build_index


def build_and_push_index(
    store: ArtifactStore,
    name: str,
    documents: Iterable[Document],
    options: BuildOptions,
    *,
    embedder: Embedder | None = None,
    previous: PreviousVersion | None = None,
    progress: Progress | None = None,
    tags: Sequence[str] = ("latest",),
    extra_parameters: Mapping[str, Any] | None = None,
    resume_dir: Path | None = None,
) -> Artifact:
    """The pushed index artifact; ``extra_parameters`` are recorded in its spec's ``parameters``.

    With ``resume_dir`` (see ``build_index``) an interrupted build resumes from its last finished
    embedding batch; the index is pushed and tagged only once it is whole."""
    with tempfile.TemporaryDirectory(prefix="aihub-index-") as tmp:
        built = build_index(
            documents,
            Path(tmp) / "index",
            options,
            embedder=embedder,
            previous=previous,
            progress=progress,
            resume_dir=resume_dir,
        )
        spec = built.spec
        if extra_parameters:
            spec = {**spec, "parameters": {**spec["parameters"], **extra_parameters}}
        files = {relative: built.folder / relative for relative in built.files}
        artifact = store.push("index", name, spec, files, tags=tags)
    if built.checkpoint is not None:
        built.checkpoint.discard()
    return artifact
