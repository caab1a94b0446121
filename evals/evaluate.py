"""One evaluation end to end: pin, run (or resume) through a gateway client, write the report files."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.client import GatewayClient
from evals.plan import EngineSettings, RunPlan, make_plan
from evals.report import build_report, write_report
from evals.retrieval_eval import CHUNK_DEPTH, RUN_DEPTH
from evals.run import RunOutcome, run_eval
from hub.store import LocalStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalRequest:
    target: str
    dataset: str
    out: Path
    split: str | None = None
    metrics: str | None = None  # comma-separated; default: every metric the dataset supports
    engine: EngineSettings = field(default_factory=EngineSettings)
    served_model: str | None = None  # gateway id of a plain model target
    concurrency: int = 4
    resume: bool = False
    plot: bool = True
    search_limit: int = RUN_DEPTH  # documents per query
    search_depth: int = CHUNK_DEPTH  # chunks asked per query


@dataclass(frozen=True)
class EvalResult:
    plan: RunPlan
    outcome: RunOutcome
    report: dict[str, Any]
    files: list[Path]


async def evaluate(
    client: GatewayClient,
    store: LocalStore,
    request: EvalRequest,
    on_item: Callable[[int, int], None] | None = None,
) -> EvalResult:
    plan, dataset = make_plan(
        store,
        request.target,
        request.dataset,
        split=request.split,
        metrics=request.metrics,
        engine=request.engine,
        served_model=request.served_model,
        search_limit=request.search_limit,
        search_depth=request.search_depth,
    )
    logger.info(
        "evaluating %s (composition %s) on %s",
        plan.target.pinned_ref,
        plan.composition_digest,
        plan.dataset.pinned_ref,
    )
    outcome = await run_eval(
        client,
        plan,
        dataset,
        request.out,
        concurrency=request.concurrency,
        resume=request.resume,
        on_item=on_item,
    )
    duration = outcome.duration_s if outcome.ran == len(outcome.records) else None
    report = build_report(plan, outcome.records, duration_s=duration, concurrency=request.concurrency)
    files = write_report(report, request.out, plot=request.plot)
    return EvalResult(plan, outcome, report, files)
