"""Eval reports in the hub: an ``eval-report`` artifact whose OCI subject is the exact target digest."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import InvalidSpecError
from core.store import Artifact, ArtifactStore
from evals.report import REPORT_JSON, read_report
from evals.run import PLAN_FILE, RESULTS_FILE

logger = logging.getLogger(__name__)
ATTACHED_FILES = (REPORT_JSON, "report.md", "report.png", PLAN_FILE, RESULTS_FILE)


def report_name(report: Mapping[str, Any]) -> str:
    return f"evals/{report['target']['name']}"


def report_spec(report: Mapping[str, Any], files: Sequence[str]) -> dict[str, Any]:
    target, dataset, engine = report["target"], report["dataset"], report["engine"]
    return {
        "description": f"evaluation of {target['name']} on {dataset['name']}",
        "target": f"{target['name']}@{target['digest']}",
        "dataset": f"{dataset['name']}@{dataset['digest']}",
        "composition_digest": report["composition_digest"],
        "metrics": dict(report["metrics"]),
        "parameters": {
            "split": dataset.get("split"),
            "temperature": engine["temperature"],
            "max_tokens": engine["max_tokens"],
            "top_p": engine["top_p"],
            "seed": engine["seed"],
            "search_limit": report.get("search_limit"),
            "search_depth": report.get("search_depth"),
            "aihub_version": report["aihub_version"],
            "items": report["counts"]["items"],
        },
        "files": list(files),
    }


def push_report(store: ArtifactStore, out: Path, tags: Sequence[str] = ()) -> Artifact:
    """Push a run folder's report (and its per-item results) attached to the target it measured."""
    report = read_report(out)
    files = {name: out / name for name in ATTACHED_FILES if (out / name).is_file()}
    artifact = store.push("eval-report", report_name(report), report_spec(report, sorted(files)), files, tags)
    logger.info("pushed eval report %s for %s", artifact.pinned_ref, report["target"]["digest"])
    return artifact


def hub_report(store: ArtifactStore, ref: str) -> dict[str, Any]:
    """The report.json of an eval-report artifact."""
    artifact = store.resolve(ref)
    if artifact.kind != "eval-report":
        raise InvalidSpecError(f"{ref} is a {artifact.kind}, not an eval-report")
    return read_report(store.materialize(artifact.pinned_ref) / REPORT_JSON)
