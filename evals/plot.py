"""PNG plots of reports with matplotlib's Agg renderer (a bare ``Figure``: no pyplot, no display)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import InvalidRequestError


def _figure(width: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InvalidRequestError("plots need matplotlib: pip install 'aihub[plots]'") from None
    return Figure(figsize=(width, 3.6), dpi=100, layout="constrained")


def _title(report: Mapping[str, Any]) -> str:
    target = report["target"]
    return f"{target['name']}@{target['digest'][7:19]} on {report['dataset']['name']}"


def plot_metrics(report: Mapping[str, Any], path: Path) -> None:
    """One bar per metric, its value written on top."""
    metrics = report["metrics"]
    names = list(metrics)
    figure = _figure(max(4.0, 1.1 * len(names) + 1.5))
    axes = figure.subplots()
    bars = axes.bar(names, [metrics[n] for n in names], color="#3b6ea5")
    axes.bar_label(bars, labels=[f"{metrics[n]:.3f}" for n in names], padding=2, fontsize=8)
    axes.set_ylim(0, max(1.0, *(metrics[n] for n in names)) * 1.1 if names else 1.0)
    axes.set_ylabel("score")
    axes.set_title(_title(report), fontsize=9)
    axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    figure.savefig(path, format="png", metadata={"Software": None})


def plot_comparison(a: Mapping[str, Any], b: Mapping[str, Any], path: Path, labels: tuple[str, str]) -> None:
    """Grouped bars: each metric both runs report, A beside B."""
    names = [n for n in a["metrics"] if n in b["metrics"]]
    figure = _figure(max(4.5, 1.4 * len(names) + 1.5))
    axes = figure.subplots()
    width = 0.38
    positions = range(len(names))
    for offset, report, label, color in (
        (-width / 2, a, labels[0], "#9aa5b1"),
        (width / 2, b, labels[1], "#3b6ea5"),
    ):
        values = [report["metrics"][n] for n in names]
        bars = axes.bar([p + offset for p in positions], values, width, label=label, color=color)
        axes.bar_label(bars, labels=[f"{v:.3f}" for v in values], padding=2, fontsize=7)
    axes.set_xticks(list(positions), names, rotation=30, fontsize=8)
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("score")
    axes.legend(fontsize=8)
    axes.set_title(f"{labels[0]} vs {labels[1]}", fontsize=9)
    figure.savefig(path, format="png", metadata={"Software": None})
