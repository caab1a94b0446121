"""Comparing two runs: metric deltas with per-query paired significance (bootstrap and sign test)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.report import read_report
from evals.results_log import read_results
from evals.run import RESULTS_FILE

DEFAULT_SAMPLES = 10_000


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    a: float
    b: float
    paired: int  # items scored in both runs
    wins: int  # items where B scores higher
    losses: int
    p_bootstrap: float | None  # None without per-item results
    p_sign: float | None

    @property
    def delta(self) -> float:
        return self.b - self.a


@dataclass(frozen=True)
class Comparison:
    a: dict[str, Any]  # report A
    b: dict[str, Any]
    deltas: tuple[MetricDelta, ...]


def paired_bootstrap(differences: list[float], samples: int = DEFAULT_SAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of the mean paired difference: how often a resample's mean strays from the
    observed mean by at least the observed mean (the resamples, centred, stand for "no difference")."""
    import numpy as np

    if not differences:
        return 1.0
    values = np.asarray(differences, dtype=np.float64)
    observed = float(values.mean())
    if observed == 0.0:
        return 1.0
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    extreme = np.abs(means - observed) >= abs(observed) - 1e-12
    return float((extreme.sum() + 1) / (samples + 1))


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial test of wins against losses (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def _records(run: Path) -> dict[str, dict[str, Any]] | None:
    path = run / RESULTS_FILE if run.is_dir() else run.parent / RESULTS_FILE
    return read_results(path) if path.exists() else None


def metric_delta(
    metric: str,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    records_a: Mapping[str, Mapping[str, Any]] | None,
    records_b: Mapping[str, Mapping[str, Any]] | None,
    samples: int,
    seed: int,
) -> MetricDelta:
    value_a, value_b = float(a["metrics"][metric]), float(b["metrics"][metric])
    if records_a is None or records_b is None:
        return MetricDelta(metric, value_a, value_b, 0, 0, 0, None, None)
    differences = []
    for item_id, record in records_a.items():
        other = records_b.get(item_id)
        if other is None:
            continue
        score_a, score_b = record.get("scores", {}).get(metric), other.get("scores", {}).get(metric)
        if score_a is not None and score_b is not None:
            differences.append(float(score_b) - float(score_a))
    wins = sum(1 for d in differences if d > 0)
    losses = sum(1 for d in differences if d < 0)
    return MetricDelta(
        metric,
        value_a,
        value_b,
        len(differences),
        wins,
        losses,
        paired_bootstrap(differences, samples, seed),
        sign_test(wins, losses),
    )


def compare_runs(run_a: Path, run_b: Path, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> Comparison:
    """Runs are output folders of ``aihub eval run`` (or report.json files, then without significance)."""
    a, b = read_report(run_a), read_report(run_b)
    records_a, records_b = _records(run_a), _records(run_b)
    shared = [m for m in a["metrics"] if m in b["metrics"]]
    deltas = tuple(metric_delta(m, a, b, records_a, records_b, samples, seed) for m in shared)
    return Comparison(a, b, deltas)
