"""`aihub bench limits` on a small count: every case runs, bounded, and prints its figures."""

from __future__ import annotations

import io

from rich.console import Console

from bench.limits_bench import run_limits_bench


def test_every_case_runs_and_is_bounded() -> None:
    console = Console(file=io.StringIO(), width=160)
    figures = run_limits_bench(admits=1000, max_seconds=5.0, postgres_urls=[], console=console)
    assert [f.case for f in figures] == ["no limits", "limits, warm lease", "limits, lease / 100"]
    for figure in figures:
        assert figure.admits == 1000 and figure.admits_per_s > 0 and 0 < figure.p50_us <= figure.p99_us
    # The empty permit is the cheapest path: nothing is counted.
    assert figures[0].p50_us < figures[1].p50_us
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "admits/s" in text and "limits, warm lease" in text
