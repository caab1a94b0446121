"""The release gate: a candidate's metrics against a baseline report, each allowed to drop by at most
``max_drop`` (absolute). Every metric here is higher-is-better; latency is not gated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GateCheck:
    metric: str
    baseline: float
    candidate: float | None  # None: the candidate did not measure it (a failure)
    max_drop: float

    @property
    def drop(self) -> float:
        return float("inf") if self.candidate is None else self.baseline - self.candidate

    @property
    def passed(self) -> bool:
        # A hair of tolerance so that a drop of exactly max_drop passes despite float rounding.
        return self.candidate is not None and self.drop <= self.max_drop + 1e-12


def gate(
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    max_drop: float,
    metrics: Sequence[str] | None = None,
) -> list[GateCheck]:
    """One check per baseline metric (or per ``metrics``)."""
    names = list(metrics) if metrics else list(baseline["metrics"])
    measured = candidate["metrics"]
    return [
        GateCheck(name, float(baseline["metrics"][name]), measured.get(name), max_drop)
        for name in names
        if name in baseline["metrics"]
    ]


def same_conditions(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[str]:
    """What differs between the two runs besides the target (dataset, split, engine settings)."""
    differences = []
    for key in ("digest", "split"):
        if baseline["dataset"].get(key) != candidate["dataset"].get(key):
            differences.append(f"dataset {key}")
    if baseline["engine"] != candidate["engine"]:
        differences.append("engine settings")
    for key in ("search_limit", "search_depth"):
        if baseline.get(key) != candidate.get(key):
            differences.append(key.replace("_", " "))
    return differences
