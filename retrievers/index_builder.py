"""Building an index folder (chunk table, vectors, backend files) and the spec that describes it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from core.embedder import BulkEmbedder, Embedder, EmbeddingMethod
from core.errors import EmbedderMismatchError, InvalidRequestError
from retrievers import fusion
from retrievers.bm25_index import Bm25Index
from retrievers.chunk_table import ChunkRow, ChunkTable
from retrievers.chunking import Chunking, split
from retrievers.documents import Document
from retrievers.embedding_checkpoint import BatchCheckpoint, ResumableBulkEmbedder, open_checkpoint
from retrievers.faiss_index import FaissIndex
from retrievers.qdrant_index import QdrantIndex

logger = logging.getLogger(__name__)

Backend = Literal["faiss", "qdrant", "bm25", "hybrid"]
BACKENDS: tuple[Backend, ...] = ("faiss", "qdrant", "bm25", "hybrid")
VECTORS_FILE = "vectors.npy"
EMBED_SLICE = 256  # texts per progress step
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    backend: Backend
    chunking: Chunking = field(default_factory=Chunking)
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per section
    embedder_ref: str | None = None  # the embedder's hub reference, recorded in the spec


@dataclass(frozen=True, slots=True)
class BuiltIndex:
    folder: Path
    files: list[str]
    spec: dict[str, Any]
    # The finished embedding batches kept for a resume; the caller discards them once the index is pushed.
    checkpoint: BatchCheckpoint | None = None


@dataclass(frozen=True, slots=True)
class PreviousVersion:
    """An earlier version to extend: its chunks and vectors in order, and its spec."""

    table: ChunkTable
    vectors: npt.NDArray[np.float32] | None
    spec: Mapping[str, Any]


def is_dense(backend: str) -> bool:
    return backend != "bm25"


def embedder_digest_of(spec: Mapping[str, Any]) -> str | None:
    ref = spec.get("embedder")
    if isinstance(ref, str) and "@" in ref:
        return ref.split("@", 1)[1]
    digest = spec.get("parameters", {}).get("embedder_digest")
    return str(digest) if digest else None


def check_embedder(spec: Mapping[str, Any], embedder: Embedder | None) -> None:
    if not is_dense(str(spec.get("backend"))):
        return
    if embedder is None:
        raise EmbedderMismatchError(f"a {spec.get('backend')} index needs an embedder; none is configured")
    expected = embedder_digest_of(spec)
    if expected != embedder.info.digest:
        raise EmbedderMismatchError(
            f"the index was built with embedder {spec.get('embedder') or expected}, "
            f"but the embedder at hand is {embedder.info.id}@{embedder.info.digest}"
        )


def embedding_method(embedder: Embedder) -> EmbeddingMethod:
    """How ``embedder``'s bulk vectors are computed (an embedder without a bulk path: fp32, unknown)."""
    if isinstance(embedder, BulkEmbedder):
        return embedder.bulk_method
    return EmbeddingMethod("float32", "unknown")


def _method_spec(method: EmbeddingMethod, previous: PreviousVersion | None) -> dict[str, str]:
    """The recorded method; a version that adds to one built another way records both ("a+b")."""
    spec = method.as_spec()
    before = previous.spec.get("parameters", {}).get("embedding") if previous is not None else None
    if previous is not None and not isinstance(before, Mapping):
        before = {"dtype": "float32", "runtime": "unknown"}  # built before methods were recorded
    if isinstance(before, Mapping):
        for key, value in list(spec.items()):
            parts = set(str(before.get(key, "unknown")).split("+")) | {value}
            spec[key] = "+".join(sorted(parts))
    return spec


def _embed(
    embedder: Embedder, texts: list[str], progress: Progress | None, checkpoint: BatchCheckpoint | None = None
) -> npt.NDArray[np.float32]:
    if isinstance(embedder, BulkEmbedder):
        # Progress in tokens ("embedding tokens"), so that callers can show tokens/s.
        def tokens(done: int, total: int) -> None:
            if progress:
                progress("embedding tokens", done, total)

        if checkpoint is not None and isinstance(embedder, ResumableBulkEmbedder):
            if progress and checkpoint.finished:
                progress("resumed batches", checkpoint.finished, checkpoint.finished)
            return embedder.embed_bulk(texts, tokens, checkpoint)
        return embedder.embed_bulk(texts, tokens)
    out = np.zeros((len(texts), embedder.info.dimensions), dtype=np.float32)
    # Longest first over the whole corpus, so every batch pads little and the ETA is honest early.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(order), EMBED_SLICE):
        rows = order[start : start + EMBED_SLICE]
        out[rows] = embedder.embed_batch([texts[i] for i in rows])
        if progress:
            progress("embedding", min(start + EMBED_SLICE, len(order)), len(order))
    return out


def _chunk_rows(documents: Iterable[Document], chunking: Chunking) -> list[ChunkRow]:
    rows: list[ChunkRow] = []
    seen: set[str] = set()
    for document in documents:
        if document.doc_id in seen:
            raise InvalidRequestError(f"document id {document.doc_id!r} appears twice in the sources")
        seen.add(document.doc_id)
        rows.extend(ChunkRow.of(chunk) for chunk in split(document, chunking))
    return rows


def build_index(
    documents: Iterable[Document],
    out: Path,
    options: BuildOptions,
    *,
    embedder: Embedder | None = None,
    previous: PreviousVersion | None = None,
    progress: Progress | None = None,
    removed: Collection[str] = (),
    resume_dir: Path | None = None,
) -> BuiltIndex:
    """``removed``: document ids of ``previous`` left out of the new version (with or without new rows).

    ``resume_dir``: finished embedding batches are kept there (one folder per input and parameters), so
    a rerun after an interruption reuses them (``BuiltIndex.checkpoint``; discard it once pushed)."""
    backend = options.backend
    if backend not in BACKENDS:
        raise InvalidRequestError(f"backend must be one of {BACKENDS}, not {backend!r}", param="backend")
    if is_dense(backend) and embedder is None:
        raise InvalidRequestError(f"a {backend} index needs an embedder", param="embedder")
    if previous is not None:
        if previous.spec.get("backend") != backend:
            raise InvalidRequestError(
                f"cannot add to a {previous.spec.get('backend')} index with backend {backend}"
            )
        check_embedder(previous.spec, embedder)
    out.mkdir(parents=True, exist_ok=True)
    new_rows = _chunk_rows(documents, options.chunking)
    if not new_rows and (previous is None or not removed):
        raise InvalidRequestError("the sources hold no documents")
    if progress:
        progress("chunking", len(new_rows), len(new_rows))
    checkpoint = None
    if resume_dir is not None and new_rows and isinstance(embedder, ResumableBulkEmbedder):
        checkpoint = open_checkpoint(resume_dir, embedder, [r.indexed_text for r in new_rows])
    new_vectors = (
        _embed(embedder, [r.indexed_text for r in new_rows], progress, checkpoint)
        if is_dense(backend) and embedder and new_rows
        else None
    )
    rows, vectors = new_rows, new_vectors
    if previous is not None:
        # A re-added document replaces all of its earlier chunks.
        replaced = {r.doc_id for r in new_rows} | set(removed)
        keep = [i for i, r in enumerate(previous.table.rows) if r.doc_id not in replaced]
        rows = [previous.table.rows[i] for i in keep] + new_rows
        if previous.vectors is not None and is_dense(backend):
            kept = previous.vectors[keep]
            vectors = kept if new_vectors is None else np.concatenate([kept, new_vectors])
        if not rows:
            raise InvalidRequestError("the index would hold no documents")
    table = ChunkTable(rows)
    files = [table.write(out).name]
    params: dict[str, Any] = {"chunking": options.chunking.as_spec()}
    if vectors is not None and embedder is not None:
        np.save(out / VECTORS_FILE, vectors)
        files.append(VECTORS_FILE)
        params["embedder_digest"] = embedder.info.digest
        params["embedder_id"] = embedder.info.id
        params["embedding"] = _method_spec(embedding_method(embedder), previous)
    if backend in ("faiss", "hybrid"):
        assert vectors is not None
        faiss_index = FaissIndex.build(vectors, options.parameters.get("faiss"))
        files += faiss_index.save(out)
        params["faiss"] = faiss_index.parameters
    if backend == "qdrant":
        params["qdrant"] = QdrantIndex.parameters_of(options.parameters.get("qdrant"))
    if backend in ("bm25", "hybrid"):
        if progress:
            progress("bm25", 0, 1)
        bm25 = Bm25Index.build([r.indexed_text for r in rows], options.parameters.get("bm25"))
        files += bm25.save(out)
        params["bm25"] = bm25.parameters
        if progress:
            progress("bm25", 1, 1)
    if backend == "hybrid":
        params["fusion"] = fusion.parameters_of(options.parameters.get("fusion"))
    spec: dict[str, Any] = {
        "backend": backend,
        "embedder": options.embedder_ref if is_dense(backend) else None,
        "dimension": int(vectors.shape[1]) if vectors is not None else None,
        "parameters": params,
        "files": files,
        "counts": {"documents": table.documents, "chunks": len(table)},
    }
    return BuiltIndex(out, files, spec, checkpoint)


def load_previous(folder: Path, spec: Mapping[str, Any]) -> PreviousVersion:
    vectors_path = folder / VECTORS_FILE
    vectors = np.load(vectors_path) if vectors_path.exists() else None
    return PreviousVersion(ChunkTable.read(folder), vectors, spec)
