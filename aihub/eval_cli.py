"""`aihub eval`: quality of hub artifacts on public benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

eval_app = typer.Typer(help="Evaluate artifacts (retrieval quality).", no_args_is_help=True)
console = Console(stderr=True)


@eval_app.command()
def retrieval(
    index: Annotated[str, typer.Option(help="Index reference (pin a digest for reproducible numbers).")],
    dataset: Annotated[Path, typer.Option(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option(help="qrels split.")] = "test",
    run_out: Annotated[Path | None, typer.Option(help="Write the run (top 100 per query) as JSON.")] = None,
    mode: Annotated[str | None, typer.Option(help="dense, bm25 or hybrid (default: the backend's).")] = None,
    config: Annotated[Path | None, typer.Option(help="aihub YAML config.")] = None,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of an index on a BEIR dataset, as BEIR computes them."""
    from rich.progress import Progress

    from aihub.compose import load_all_settings, open_store
    from aihub.index_cli import open_retriever
    from evals.retrieval_eval import load_beir, score_retriever, write_run

    settings = load_all_settings(config)
    store = open_store(settings)
    retriever = open_retriever(index, settings, store)
    data = load_beir(dataset, split)
    with Progress(console=console) as progress:
        task = progress.add_task(f"{len(data.queries)} queries", total=len(data.queries))
        scores = score_retriever(
            retriever,
            data,
            mode=mode,  # type: ignore[arg-type]
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if run_out is not None:
        write_run(scores.run, run_out)
    table = Table(title=f"{index} ({retriever.info.digest[:19]}) on {dataset.name}/{split}")
    for column in ("mode", "queries", "nDCG@10", "Recall@100", "MRR@10", "seconds"):
        table.add_column(column)
    m = scores.metrics
    table.add_row(
        mode or retriever.info.backend,
        str(int(m["queries"])),
        f"{m['ndcg@10']:.4f}",
        f"{m['recall@100']:.4f}",
        f"{m['mrr@10']:.4f}",
        f"{scores.seconds:.1f}",
    )
    Console().print(table)


class PrecomputedQueryEmbedder:
    """Replays query vectors computed beforehand (falls back to the real embedder for other texts), so
    that the search benchmark measures retrieval rather than the embedding forward it shares with FAISS."""

    def __init__(self, real: Any, vectors: dict[str, Any]) -> None:
        self._real = real
        self._vectors = vectors

    @property
    def info(self) -> Any:
        return self._real.info

    async def embed(self, inputs: Any) -> Any:
        import numpy as np

        from core.embedder import Embeddings

        if all(isinstance(x, str) and x in self._vectors for x in inputs):
            return Embeddings(vectors=np.stack([self._vectors[x] for x in inputs]), prompt_tokens=0)
        return await self._real.embed(inputs)

    def embed_batch(self, texts: Any) -> Any:
        import numpy as np

        if all(t in self._vectors for t in texts):
            return np.stack([self._vectors[t] for t in texts])
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


def retrieval_bench_setup(dataset: Path | None = None, *, docs: int = 1000, queries: int = 200) -> Any:
    """Index ``docs`` documents of a BEIR corpus with exact FAISS and wire a gateway app around it."""
    import itertools
    import json
    import tempfile

    import numpy as np

    from aihub.default_models import _minilm_folder
    from evals.retrieval_bench import RetrievalBenchSetup
    from gateway.app import create_app
    from gateway.services import GatewayServices
    from gateway.settings import GatewaySettings
    from retrievers.documents import read_jsonl
    from retrievers.factory import build_embedder
    from retrievers.index_builder import BuildOptions, build_index
    from retrievers.index_retriever import open_index
    from retrievers.settings import RetrieverSettings

    folder = dataset or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
    settings = RetrieverSettings()
    embedder = build_embedder("all-minilm-l6-v2", _minilm_folder(), settings, digest=None)
    documents = list(itertools.islice(read_jsonl(folder / "corpus.jsonl"), docs))
    with (folder / "queries.jsonl").open() as lines:
        query_texts = [json.loads(line)["text"] for line in itertools.islice(lines, queries)]
    work = Path(tempfile.mkdtemp(prefix="aihub-retrieval-bench-"))
    built = build_index(documents, work / "index", BuildOptions(backend="faiss"), embedder=embedder)
    query_vectors = embedder.embed_batch(query_texts)
    replay = PrecomputedQueryEmbedder(embedder, dict(zip(query_texts, query_vectors, strict=True)))
    ref = "indexes/bench:latest"
    retriever = open_index(
        built.folder, built.spec, ref=ref, digest="sha256:" + "0" * 64, embedder=replay, settings=settings
    )
    app = create_app(
        GatewaySettings(),
        GatewayServices(
            embedders={"all-minilm-l6-v2": embedder},
            default_embedder="all-minilm-l6-v2",
            indexes=SingleIndexProvider(ref, retriever),
        ),
    )
    texts = [f"{d.title} {d.text}"[:300] for d in documents[:256]]
    return RetrievalBenchSetup(
        corpus_vectors=np.load(built.folder / "vectors.npy"),
        row_ids=[row.doc_id for row in retriever.table.rows],
        queries=query_texts,
        query_vectors=query_vectors,
        retriever=retriever,
        embedder=embedder,
        texts=texts,
        app=app,
        vector_store_id=ref,
    )
