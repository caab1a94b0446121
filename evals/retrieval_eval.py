"""Scoring a retriever on a BEIR-layout dataset: queries, qrels, chunk hits merged to documents."""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidRequestError
from core.retrieval import Retriever, SearchHit, SearchMode
from evals.retrieval_metrics import Qrels, Run, evaluate

logger = logging.getLogger(__name__)

RUN_DEPTH = 100  # documents kept per query (Recall@100)
CHUNK_DEPTH = 300  # chunks fetched per query before merging them into documents
QUERY_BATCH = 64


@dataclass(frozen=True, slots=True)
class BeirDataset:
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class RetrievalScores:
    mode: str
    metrics: dict[str, float]
    run: dict[str, dict[str, float]]
    seconds: float


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    qrels_path = folder / "qrels" / f"{split}.tsv"
    queries_path = folder / "queries.jsonl"
    if not qrels_path.exists() or not queries_path.exists():
        raise InvalidRequestError(f"{folder} is not a BEIR folder with split {split!r} ({qrels_path})")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)  # header
        for row in reader:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries: dict[str, str] = {}
    with queries_path.open() as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                if str(record["_id"]) in qrels:
                    queries[str(record["_id"])] = str(record["text"])
    return BeirDataset(queries=queries, qrels=qrels)


def merge_to_documents(hits: Sequence[SearchHit], depth: int = RUN_DEPTH) -> dict[str, float]:
    """A document scores as its best chunk."""
    best: dict[str, float] = {}
    for hit in hits:
        if hit.score > best.get(hit.doc_id, float("-inf")):
            best[hit.doc_id] = hit.score
    top = sorted(best.items(), key=lambda item: -item[1])[:depth]
    return dict(top)


def run_queries(
    retriever: Retriever,
    queries: Mapping[str, str],
    *,
    mode: SearchMode | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, float]]:
    ids = list(queries)
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(ids), QUERY_BATCH):
        batch = ids[start : start + QUERY_BATCH]
        results = retriever.search_batch([queries[q] for q in batch], top_k=CHUNK_DEPTH, mode=mode)
        for query_id, hits in zip(batch, results, strict=True):
            # BEIR drops a document that is the query itself (same id).
            run[query_id] = {d: s for d, s in merge_to_documents(hits).items() if d != query_id}
        if progress:
            progress(min(start + QUERY_BATCH, len(ids)), len(ids))
    return run


def score_retriever(
    retriever: Retriever,
    dataset: BeirDataset,
    *,
    mode: SearchMode | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RetrievalScores:
    start = time.perf_counter()
    run = run_queries(retriever, dataset.queries, mode=mode, progress=progress)
    qrels: Qrels = dataset.qrels
    scored: Run = run
    metrics = evaluate(scored, qrels)
    return RetrievalScores(
        mode=mode or "default", metrics=metrics, run=run, seconds=time.perf_counter() - start
    )


def write_run(run: Mapping[str, Mapping[str, float]], path: Path) -> None:
    path.write_text(json.dumps({q: dict(docs) for q, docs in run.items()}, indent=None))
