"""Running a pinned evaluation through a gateway: items concurrently, results appended as they finish.

Every request names the target by digest (``rag/name@sha256:…``; indices by their pinned reference),
chat requests carry the plan's engine settings (temperature 0, seed, max_tokens), and a composition
answering with another composition digest than the plan's stops the run: that gateway serves other
artifacts than the ones pinned here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core.errors import ConflictError, InvalidRequestError, NotFoundError
from evals.answer_metrics import citation_recall, exact_match, is_refusal, token_f1
from evals.client import GatewayClient
from evals.datasets import EvalDataset, QaItem
from evals.plan import ANSWER_METRICS, RunPlan
from evals.ranking_scores import documents_of, fuse_documents, retrieval_scores
from evals.results_log import ResultsLog, read_results

logger = logging.getLogger(__name__)

PLAN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"


@dataclass(frozen=True)
class RunOutcome:
    plan: RunPlan
    records: dict[str, dict[str, Any]]  # item id → per-item record, in dataset order
    duration_s: float  # wall time of the items run in this invocation
    ran: int  # items run in this invocation (the rest came from an earlier, interrupted one)


def retrieval_metrics_of(plan: RunPlan) -> tuple[str, ...]:
    return tuple(m for m in plan.metrics if m not in ANSWER_METRICS)


def answer_metrics_of(plan: RunPlan) -> tuple[str, ...]:
    return tuple(m for m in plan.metrics if m in ANSWER_METRICS)


class ItemEvaluator:
    """Evaluates one dataset item: retrieval where it has qrels, an answer where it has references."""

    def __init__(self, client: GatewayClient, plan: RunPlan, dataset: EvalDataset) -> None:
        self.client = client
        self.plan = plan
        self.dataset = dataset
        self.retrieval = retrieval_metrics_of(plan) if plan.target.vector_stores else ()
        answering = plan.target.kind != "index" and plan.target.model_id is not None
        self.answers = answer_metrics_of(plan) if answering else ()
        self.params = plan.engine.request_params()

    def wants(self, item: QaItem) -> bool:
        return bool(self._retrieves(item) or self._answers(item))

    def _retrieves(self, item: QaItem) -> bool:
        return bool(self.retrieval) and item.id in self.dataset.qrels

    def _answers(self, item: QaItem) -> bool:
        return bool(self.answers) and bool(item.answers or item.doc_ids or not item.answerable)

    async def __call__(self, item: QaItem) -> dict[str, Any]:
        record: dict[str, Any] = {"id": item.id, "scores": {}}
        if self._retrieves(item):
            await self._retrieve(item, record)
        if self._answers(item):
            await self._answer(item, record)
        return record

    async def _retrieve(self, item: QaItem, record: dict[str, Any]) -> None:
        plan = self.plan
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                self.client.search(store, item.question, plan.search_depth)
                for store in plan.target.vector_stores
            )
        )
        record["search_ms"] = (time.perf_counter() - started) * 1000
        exclude = item.id if self.dataset.layout == "beir" else None
        per_store = [documents_of(r.hits, plan.search_limit, exclude) for r in results]
        documents = per_store[0] if len(per_store) == 1 else fuse_documents(per_store)
        record["ranking"] = [[doc_id, score] for doc_id, score in documents.items()]
        scores = retrieval_scores(documents, self.dataset.qrels[item.id], self.retrieval)
        record["scores"].update(scores)

    async def _answer(self, item: QaItem, record: dict[str, Any]) -> None:
        assert self.plan.target.model_id is not None
        try:
            result = await self.client.chat(self.plan.target.model_id, item.question, self.params)
        except InvalidRequestError as exc:
            if exc.code != "context_length_exceeded":
                raise  # a misconfigured target fails every item alike: stop (the run can resume)
            record["error"] = exc.message  # deterministic for this input; scored as a miss
            text, cited, composition, latency = "", [], None, 0.0
        else:
            text, cited = result.text, result.cited_doc_ids
            composition, latency = result.composition, result.latency_s
        self._check_composition(composition)
        record.update(answer=text, cited=cited, chat_ms=latency * 1000, composition=composition)
        scores = record["scores"]
        if item.answers and "exact_match" in self.answers:
            scores["exact_match"] = exact_match(text, item.answers)
        if item.answers and "f1" in self.answers:
            scores["f1"] = token_f1(text, item.answers)
        if item.doc_ids and "citation_recall" in self.answers:
            scores["citation_recall"] = citation_recall(cited, item.doc_ids)
        if not item.answerable and "refusal_rate" in self.answers:
            scores["refusal_rate"] = float("error" not in record and is_refusal(text))

    def _check_composition(self, served: str | None) -> None:
        if self.plan.target.kind not in ("pipeline", "agent") or served is None:
            return
        if served != self.plan.composition_digest:
            raise ConflictError(
                f"the gateway served composition {served}, but the pinned lock is "
                f"{self.plan.composition_digest}: it does not serve the artifacts pinned here"
            )


def prepare_out(out: Path, plan: RunPlan, resume: bool) -> dict[str, dict[str, Any]]:
    """Write the plan (or, resuming, check it is the same); return the records already done."""
    plan_path, results_path = out / PLAN_FILE, out / RESULTS_FILE
    if resume:
        if not plan_path.exists():
            raise NotFoundError(f"nothing to resume in {out}: no {PLAN_FILE}")
        earlier = RunPlan.from_dict(orjson.loads(plan_path.read_bytes()))
        if earlier.identity() != plan.identity():
            changed = sorted(k for k, v in plan.identity().items() if earlier.identity().get(k) != v)
            raise ConflictError(
                f"refusing to resume {out}: the pinned plan differs ({', '.join(changed)}); "
                "start a new run with another --out"
            )
        return read_results(results_path, repair=True)
    if results_path.exists() and results_path.stat().st_size:
        raise ConflictError(f"{results_path} already holds results: pass --resume, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(orjson.dumps(plan.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    results_path.unlink(missing_ok=True)
    return {}


async def run_eval(
    client: GatewayClient,
    plan: RunPlan,
    dataset: EvalDataset,
    out: Path,
    *,
    concurrency: int = 4,
    resume: bool = False,
    on_item: Callable[[int, int], None] | None = None,
) -> RunOutcome:
    """Evaluate every item not yet done; ``on_item(done, total)`` reports progress."""
    if concurrency < 1:
        raise InvalidRequestError("concurrency must be at least 1", param="concurrency")
    done = prepare_out(out, plan, resume)
    evaluate = ItemEvaluator(client, plan, dataset)
    wanted = [item for item in dataset.items if evaluate.wants(item)]
    if not wanted:
        raise InvalidRequestError(
            f"nothing to evaluate: {plan.target.kind} target, metrics {', '.join(plan.metrics)}, "
            f"and a {dataset.layout} dataset without matching qrels or references"
        )
    todo = [item for item in wanted if item.id not in done]
    total = len(wanted)
    if on_item is not None:
        on_item(len(wanted) - len(todo), total)
    queue: asyncio.Queue[QaItem] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    started = time.perf_counter()
    with ResultsLog(out / RESULTS_FILE) as log:

        async def worker() -> None:
            while not queue.empty():
                item = queue.get_nowait()
                record = await evaluate(item)
                log.append(record)
                done[item.id] = record
                if on_item is not None:
                    on_item(len(done), total)

        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, max(1, len(todo))))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    duration = time.perf_counter() - started
    ordered = {item.id: done[item.id] for item in wanted if item.id in done}
    return RunOutcome(plan=plan, records=ordered, duration_s=duration, ran=len(todo))


def load_records(out: Path) -> tuple[RunPlan, dict[str, dict[str, Any]]]:
    plan = RunPlan.from_dict(orjson.loads((out / PLAN_FILE).read_bytes()))
    return plan, read_results(out / RESULTS_FILE)


def mean_scores(records: Mapping[str, Mapping[str, Any]], metrics: tuple[str, ...]) -> dict[str, float]:
    """Each metric averaged over the items it applies to (judged queries, answerable questions…)."""
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for record in records.values():
        for name, value in record.get("scores", {}).items():
            if name in values:
                values[name].append(float(value))
    return {name: sum(v) / len(v) for name, v in values.items() if v}
