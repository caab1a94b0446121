"""An evaluation report: JSON (machine-readable), Markdown (a table) and, via ``evals.plot``, a PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from core.errors import InvalidSpecError
from evals.plan import RunPlan
from evals.run import mean_scores

SCHEMA = "aihub.eval-report/v1"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
LATENCY_FIELDS = ("search_ms", "chat_ms")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(records: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    summary = {}
    for name in LATENCY_FIELDS:
        values = [float(r[name]) for r in records.values() if name in r]
        if values:
            summary[name.removesuffix("_ms")] = {
                "p50": percentile(values, 50),
                "p90": percentile(values, 90),
                "p99": percentile(values, 99),
                "mean": sum(values) / len(values),
                "count": len(values),
            }
    return summary


def build_report(
    plan: RunPlan,
    records: Mapping[str, Mapping[str, Any]],
    *,
    duration_s: float | None = None,
    concurrency: int | None = None,
) -> dict[str, Any]:
    counts: dict[str, int] = {"items": len(records)}
    for metric in plan.metrics:  # metrics the dataset or target do not support are left out
        measured = sum(1 for r in records.values() if metric in r.get("scores", {}))
        if measured:
            counts[metric] = measured
    counts["errors"] = sum(1 for r in records.values() if "error" in r)
    return {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "aihub_version": plan.aihub_version,
        "target": plan.to_dict()["target"],
        "dataset": plan.to_dict()["dataset"],
        "composition_digest": plan.composition_digest,
        "lock": dict(plan.lock),
        "engine": plan.to_dict()["engine"],
        "search_limit": plan.search_limit,
        "search_depth": plan.search_depth,
        "metrics": mean_scores(records, plan.metrics),
        "counts": counts,
        "latency_ms": latency_summary(records),
        "run": {
            "duration_s": duration_s,
            "concurrency": concurrency,
            "items_per_s": (len(records) / duration_s) if duration_s else None,
        },
    }


def write_json(report: Mapping[str, Any], path: Path) -> None:
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def read_report(path: Path) -> dict[str, Any]:
    """A report.json, or the folder of a run holding one."""
    file = path / REPORT_JSON if path.is_dir() else path
    try:
        data = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InvalidSpecError(f"cannot read an eval report from {file}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InvalidSpecError(f"{file} is not an aihub eval report ({SCHEMA})")
    return data


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(report: Mapping[str, Any]) -> str:
    target, dataset = report["target"], report["dataset"]
    engine = report["engine"]
    lines = [
        f"# Evaluation of `{target['name']}`",
        "",
        f"- target: `{target['name']}@{target['digest']}` ({target['kind']})",
        f"- dataset: `{dataset['name']}@{dataset['digest']}`"
        + (f" split `{dataset['split']}`" if dataset.get("split") else ""),
        f"- composition digest: `{report['composition_digest']}`",
        f"- engine: temperature {engine['temperature']}, max_tokens {engine['max_tokens']}, "
        f"top_p {engine['top_p']}, seed {engine['seed']}",
        f"- aihub {report['aihub_version']}, created {report['created']}",
        "",
        "| metric | value | n |",
        "|---|---:|---:|",
    ]
    counts = report.get("counts", {})
    for name, value in report["metrics"].items():
        lines.append(f"| {name} | {_fmt(value)} | {counts.get(name, '')} |")
    latency = report.get("latency_ms") or {}
    if latency:
        lines += ["", "| latency (ms) | p50 | p90 | p99 | n |", "|---|---:|---:|---:|---:|"]
        for kind, figures in latency.items():
            lines.append(
                f"| {kind} | {figures['p50']:.1f} | {figures['p90']:.1f} | {figures['p99']:.1f} "
                f"| {figures['count']} |"
            )
    if counts.get("errors"):
        lines += ["", f"{counts['errors']} item(s) failed and are scored as misses."]
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], out: Path, plot: bool = True) -> list[Path]:
    """report.json, report.md and (matplotlib installed) report.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / REPORT_JSON, out / REPORT_MD]
    write_json(report, written[0])
    written[1].write_text(markdown(report))
    if plot:
        from evals.plot import plot_metrics

        plot_metrics(report, out / REPORT_PNG)
        written.append(out / REPORT_PNG)
    return written
