"""A hub for the console tests: a pipeline in two versions (and its prompt in two), a dataset, and
two eval reports attached to the newer pipeline, each with report.json, report.png and results.jsonl.

The engine and retriever are the doubles of ``composition_doubles`` (a real model is too slow here);
the hub is the real LocalStore and the reports are written and pushed by ``evals`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from evals.hub_report import push_report
from evals.report import SCHEMA, write_report
from tests.gateway import composition_doubles as D

TEMPLATE_V2 = D.RAG_TEMPLATE.replace("Question:", "Answer briefly, citing [n].\nQuestion:")
ANSWER = "Leonardo is hosted by CINECA in Bologna [1]."
QUERIES = ("q1", "q2", "q3", "q4")


@dataclass
class ConsoleHub:
    hub: D.Hub
    pipeline_v1: str
    pipeline_v2: str
    prompt_v1: str  # pinned refs
    prompt_v2: str
    report_a: str
    report_b: str


def _report(hub: D.Hub, pipeline: str, dataset: Any, scores: dict[str, list[float]]) -> dict[str, Any]:
    metrics = {name: sum(values) / len(values) for name, values in scores.items()}
    return {
        "schema": SCHEMA,
        "created": "2026-12-01T10:00:00+00:00",
        "aihub_version": "0.1.0",
        "target": {"name": "pipelines/support", "digest": pipeline, "kind": "pipeline"},
        "dataset": {"name": dataset.name, "digest": dataset.digest, "split": "test"},
        "composition_digest": "sha256:" + "c" * 64,
        "lock": {},
        "engine": {"temperature": 0.0, "max_tokens": 64, "top_p": 1.0, "seed": 0},
        "search_limit": 10,
        "search_depth": 10,
        "metrics": metrics,
        "counts": {"items": len(QUERIES), **dict.fromkeys(scores, len(QUERIES)), "errors": 0},
        "latency_ms": {"answer": {"p50": 12.0, "p90": 20.0, "p99": 25.0, "mean": 13.0, "count": 4}},
        "run": {"duration_s": 1.0, "concurrency": 1, "items_per_s": 4.0},
    }


def _push_report(
    hub: D.Hub, folder: Path, pipeline: str, dataset: Any, scores: dict[str, list[float]]
) -> str:
    folder.mkdir(parents=True)
    write_report(_report(hub, pipeline, dataset, scores), folder)
    lines = [
        orjson.dumps({"id": q, "scores": {m: values[i] for m, values in scores.items()}})
        for i, q in enumerate(QUERIES)
    ]
    (folder / "results.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return push_report(hub.store, folder).pinned_ref


def make_console_hub(root: Path) -> ConsoleHub:
    hub = D.make_hub(root, [ANSWER])
    pipeline_v1 = D.push_pipeline(hub, retrieval={"top_k": 3})
    prompt_v1 = hub.store.resolve("prompts/support:latest").pinned_ref
    pipeline_v2 = D.push_pipeline(hub, template=TEMPLATE_V2, tags=("latest", "prod"), retrieval={"top_k": 2})
    prompt_v2 = hub.store.resolve("prompts/support:latest").pinned_ref
    hub.store.tag(prompt_v1, "prompts/support:v1")
    hub.store.tag(f"pipelines/support@{pipeline_v1}", "pipelines/support:v1")
    questions = root / "questions.jsonl"
    questions.write_text('{"id": "q1", "question": "Where is Leonardo?"}\n')
    dataset = hub.store.push(
        "dataset", "datasets/hpc-qa", {"files": ["questions.jsonl"]}, {"questions.jsonl": questions}
    )
    report_a = _push_report(
        hub,
        root / "run-a",
        pipeline_v2,
        dataset,
        {"ndcg@10": [1.0, 0.5, 0.0, 1.0], "exact_match": [1, 0, 0, 1]},
    )
    report_b = _push_report(
        hub,
        root / "run-b",
        pipeline_v2,
        dataset,
        {"ndcg@10": [1.0, 1.0, 0.25, 1.0], "exact_match": [1, 1, 0, 0]},
    )
    return ConsoleHub(hub, pipeline_v1, pipeline_v2, prompt_v1, prompt_v2, report_a, report_b)
