"""Eval reports for the web console: one report's tables, and two runs compared item by item.

Reports are ``eval-report`` artifacts (see ``evals/hub_report.py``): the spec holds the headline metrics,
the files ``report.json`` (the full report), ``report.png`` (its plot) and ``results.jsonl`` (one
record per item with its ``scores``). Read here through ``core.store`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from core.errors import InvalidRequestError, InvalidSpecError
from core.store import Artifact, ArtifactStore, BrowsableStore

REPORT_JSON = "report.json"
REPORT_PNG = "report.png"
RESULTS_JSONL = "results.jsonl"
SUBJECT_ANNOTATION = "vnd.aihub.subject"  # hub.media_types.ANNOTATION_SUBJECT: the digest measured
MAX_REPORT_BYTES = 64 * 1024 * 1024  # results.jsonl of a large run; more is refused rather than held


def _eval_report(store: ArtifactStore, ref: str) -> Artifact:
    artifact = store.resolve(ref)
    if artifact.kind != "eval-report":
        raise InvalidRequestError(f"{ref} is a {artifact.kind}, not an eval-report", param="ref")
    return artifact


def _report_json(browser: BrowsableStore, artifact: Artifact, paths: set[str]) -> dict[str, Any]:
    """The stored report.json, or the spec's summary when the report was pushed without it."""
    if REPORT_JSON not in paths:
        spec = artifact.spec
        return {"metrics": dict(spec.get("metrics") or {}), "target": {"ref": spec.get("target")}}
    try:
        report = orjson.loads(browser.read_file(artifact.digest, REPORT_JSON, MAX_REPORT_BYTES))
    except orjson.JSONDecodeError as exc:
        raise InvalidSpecError(f"{artifact.pinned_ref}: {REPORT_JSON} is not JSON: {exc}") from None
    if not isinstance(report, dict):
        raise InvalidSpecError(f"{artifact.pinned_ref}: {REPORT_JSON} is not an object")
    return report


def report_view(store: ArtifactStore, browser: BrowsableStore, ref: str) -> dict[str, Any]:
    artifact = _eval_report(store, ref)
    paths = {f.path for f in browser.files(artifact.digest)}
    return {
        "ref": artifact.pinned_ref,
        "name": artifact.name,
        "created": artifact.created,
        "subject": artifact.annotations.get(SUBJECT_ANNOTATION),
        "spec": dict(artifact.spec),
        "report": _report_json(browser, artifact, paths),
        "files": sorted(paths),
        "plot": REPORT_PNG if REPORT_PNG in paths else None,
        "has_items": RESULTS_JSONL in paths,
    }


def _items(browser: BrowsableStore, artifact: Artifact) -> dict[str, Mapping[str, Any]]:
    if RESULTS_JSONL not in {f.path for f in browser.files(artifact.digest)}:
        raise InvalidRequestError(
            f"{artifact.pinned_ref} was pushed without {RESULTS_JSONL}: no per-query results to compare"
        )
    items: dict[str, Mapping[str, Any]] = {}
    for line in browser.read_file(artifact.digest, RESULTS_JSONL, MAX_REPORT_BYTES).splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            break  # a torn last line of an interrupted run, as evals.results_log reads it
        if isinstance(record, dict) and "id" in record:
            items[str(record["id"])] = record
    return items


def compare_view(store: ArtifactStore, browser: BrowsableStore, ref_a: str, ref_b: str) -> dict[str, Any]:
    """Metric by metric (A, B, B − A, items won and lost by B) and query by query, for items in both."""
    a, b = _eval_report(store, ref_a), _eval_report(store, ref_b)
    items_a, items_b = _items(browser, a), _items(browser, b)
    metrics_a, metrics_b = dict(a.spec.get("metrics") or {}), dict(b.spec.get("metrics") or {})
    shared = [m for m in metrics_a if m in metrics_b]
    rows: list[dict[str, Any]] = []
    wins = dict.fromkeys(shared, 0)
    losses = dict.fromkeys(shared, 0)
    for item_id, record in items_a.items():
        other = items_b.get(item_id)
        if other is None:
            continue
        scores_a, scores_b = record.get("scores") or {}, other.get("scores") or {}
        deltas: dict[str, dict[str, float]] = {}
        for metric in shared:
            if metric in scores_a and metric in scores_b:
                va, vb = float(scores_a[metric]), float(scores_b[metric])
                deltas[metric] = {"a": va, "b": vb, "delta": vb - va}
                wins[metric] += vb > va
                losses[metric] += vb < va
        rows.append({"id": item_id, "scores": deltas})
    # The largest changes first: what a reader looks for in a comparison.
    rows.sort(key=lambda r: -max((abs(d["delta"]) for d in r["scores"].values()), default=0.0))
    return {
        "a": {"ref": a.pinned_ref, "subject": a.spec.get("target"), "items": len(items_a)},
        "b": {"ref": b.pinned_ref, "subject": b.spec.get("target"), "items": len(items_b)},
        "metrics": [
            {
                "metric": m,
                "a": metrics_a[m],
                "b": metrics_b[m],
                "delta": float(metrics_b[m]) - float(metrics_a[m]),
                "wins": wins[m],
                "losses": losses[m],
            }
            for m in shared
        ],
        "paired": len(rows),
        "items": rows,
    }
