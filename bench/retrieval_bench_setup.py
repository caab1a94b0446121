"""Composition of `aihub bench retrieval`: the full corpus indexed once (vectors cached), a gateway app.

Embedding SciFact's 5,183 documents takes minutes on a small CPU, so the benchmark either reuses the
vectors of a hub index (``--index``) or caches the index it builds in the aihub cache directory, keyed by
the corpus file's sha256 and the embedder's digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aihub.compose import AihubConfig

logger = logging.getLogger(__name__)

BENCH_REF = "indexes/bench:latest"
CACHE_FOLDER = "retrieval-bench"


class PrecomputedQueryEmbedder:
    """Replays query vectors computed beforehand (falls back to the real embedder for other texts), so
    that the search benchmark measures retrieval rather than the embedding forward it shares with FAISS."""

    def __init__(self, real: Any, vectors: dict[str, Any]) -> None:
        self._real = real
        # Kept as (1, dimensions) rows: a single-text call then costs a dict lookup, as a cache would.
        self._rows = {text: vector[None, :] for text, vector in vectors.items()}

    @property
    def info(self) -> Any:
        return self._real.info

    async def embed(self, inputs: Any) -> Any:
        import numpy as np

        from core.embedder import Embeddings

        if len(inputs) == 1 and isinstance(inputs[0], str) and inputs[0] in self._rows:
            return Embeddings(vectors=self._rows[inputs[0]], prompt_tokens=0)
        if all(isinstance(x, str) and x in self._rows for x in inputs):
            return Embeddings(vectors=np.concatenate([self._rows[x] for x in inputs]), prompt_tokens=0)
        return await self._real.embed(inputs)

    def embed_batch(self, texts: Any) -> Any:
        import numpy as np

        if all(t in self._rows for t in texts):
            return np.concatenate([self._rows[t] for t in texts])
        return self._real.embed_batch(texts)


class SingleIndexProvider:
    """Serves one opened retriever under one id (the benchmark's gateway has no hub)."""

    def __init__(self, ref: str, retriever: Any) -> None:
        self.ref = ref
        self.retriever = retriever

    def list(self) -> Any:
        return [self.retriever.info]

    async def open(self, ref: str) -> Any:
        from core.errors import ArtifactNotFoundError

        if ref != self.ref:
            raise ArtifactNotFoundError(f"no index {ref}")
        return self.retriever


def _sha256_file(path: Path, digest: Any = None) -> Any:
    digest = digest or hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest


def folder_digest(folder: Path) -> str:
    """Content digest of a model folder (names and bytes), standing in for a hub digest."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        _sha256_file(path, digest)
    return "sha256:" + digest.hexdigest()


def _cached_index(corpus: Path, embedder: Any, cache: Path) -> tuple[Path, dict[str, Any], str]:
    """The built index folder and its spec: from the cache, else built (embedding all) and cached."""
    from retrievers.documents import read_jsonl
    from retrievers.index_builder import BuildOptions, build_index

    corpus_sha = _sha256_file(corpus).hexdigest()
    key = f"{corpus_sha[:16]}-{str(embedder.info.digest).removeprefix('sha256:')[:16]}"
    folder = cache / key
    if (folder / "spec.json").is_file():
        return folder, json.loads((folder / "spec.json").read_text()), f"cached vectors ({folder})"
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
    try:
        built = build_index(read_jsonl(corpus), work, BuildOptions(backend="faiss"), embedder=embedder)
        (work / "spec.json").write_text(json.dumps(built.spec))
        os.replace(work, folder)  # atomic: a run killed mid-build leaves no half-written cache entry
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder, built.spec, f"embedded the corpus; vectors cached in {folder}"


def _hub_index(ref: str, settings: AihubConfig) -> tuple[Path, dict[str, Any], Any, str]:
    from aihub.compose import open_store
    from aihub.index_cli import open_embedder
    from core.errors import InvalidRequestError

    store = open_store(settings)
    artifact = store.resolve(ref)
    if str(artifact.spec.get("backend")) == "bm25":
        raise InvalidRequestError(f"{ref} is a BM25 index: it has no vectors to benchmark", param="index")
    embedder_ref = artifact.spec.get("embedder")
    if not embedder_ref:
        raise InvalidRequestError(
            f"{ref} names no embedder artifact to embed the queries with", param="index"
        )
    embedder, _ = open_embedder(store, str(embedder_ref), settings)
    folder = store.materialize(artifact.pinned_ref)
    return folder, dict(artifact.spec), embedder, f"vectors of hub index {artifact.pinned_ref}"


def retrieval_bench_setup(
    settings: AihubConfig, dataset: Path | None = None, *, index: str | None = None, queries: int = 300
) -> Any:
    """Exact FAISS over the whole corpus (or a hub index's vectors) and a gateway app around it."""
    import itertools

    import numpy as np

    from aihub.default_models import _minilm_folder
    from bench.retrieval_bench import RetrievalBenchSetup
    from gateway.app import create_app
    from gateway.fast_path.http_protocol import CoalescingHttpToolsProtocol
    from gateway.services import GatewayServices
    from retrievers.factory import build_embedder
    from retrievers.index_builder import VECTORS_FILE
    from retrievers.index_retriever import open_index

    data = dataset or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
    if index is not None:
        folder, spec, embedder, source = _hub_index(index, settings)
    else:
        model = _minilm_folder()
        embedder = build_embedder("all-minilm-l6-v2", model, settings.retrievers, digest=folder_digest(model))
        cache = settings.app.cache_dir / CACHE_FOLDER
        folder, spec, source = _cached_index(data / "corpus.jsonl", embedder, cache)
    with (data / "queries.jsonl").open() as lines:
        query_texts = [json.loads(line)["text"] for line in itertools.islice(lines, queries)]
    query_vectors = embedder.embed_batch(query_texts)
    replay = PrecomputedQueryEmbedder(embedder, dict(zip(query_texts, query_vectors, strict=True)))
    # Exact search on both sides, whatever the hub index's own FAISS kind: equal recall by construction
    # (a spec without `scan` is scanned exactly); the default fp16 scan is measured beside it.
    exact = {
        **spec,
        "backend": "faiss",
        "parameters": {**spec.get("parameters", {}), "faiss": {"kind": "flat"}},
    }
    retriever = open_index(
        folder,
        exact,
        ref=BENCH_REF,
        digest="sha256:" + "0" * 64,
        embedder=replay,
        settings=settings.retrievers,
    )
    default_scan = {**exact, "parameters": {**exact["parameters"], "faiss": {"kind": "flat", "scan": "fp16"}}}
    default_retriever = open_index(
        folder,
        default_scan,
        ref=BENCH_REF + "-default",
        digest="sha256:" + "1" * 64,
        embedder=replay,
        settings=settings.retrievers,
    )
    app = create_app(
        settings.gateway,
        GatewayServices(
            embedders={"all-minilm-l6-v2": embedder},
            default_embedder="all-minilm-l6-v2",
            indexes=SingleIndexProvider(BENCH_REF, retriever),
        ),
    )
    rows = retriever.table.rows
    texts = [r.indexed_text[:300] for r in rows[:256]]
    return RetrievalBenchSetup(
        corpus_vectors=np.load(folder / VECTORS_FILE),
        row_ids=[row.doc_id for row in rows],
        queries=query_texts,
        query_vectors=query_vectors,
        retriever=retriever,
        embedder=embedder,
        texts=texts,
        app=app,
        vector_store_id=BENCH_REF,
        source=source,
        http_protocol=CoalescingHttpToolsProtocol,
        default_retriever=default_retriever,
    )
