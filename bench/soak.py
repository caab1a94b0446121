"""`aihub bench soak`: mixed traffic against one gateway for a bounded time, watching for leaks and hangs.

Closed-loop workers send the kinds of ``bench.soak_traffic`` in a fixed rotation until ``requests`` are
done or ``duration_s`` is over. The server's RSS (with its child processes) is sampled every
``rss_interval_s`` and at the end; the baseline is the sample after the warm-up requests. The verdict
fails on any 5xx, hang, cut stream or unexpected answer, and on RSS growth over ``max_rss_growth``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.soak_traffic import FAILURES, Result, Target, run_one
from evals.report import percentile

# How often each kind comes up in one turn of the rotation.
WEIGHTS = {"chat": 3, "stream": 3, "cancel": 1, "rag": 2, "embeddings": 2, "search": 2, "oversized": 1}


@dataclass(frozen=True)
class SoakSpec:
    requests: int
    duration_s: float
    concurrency: int = 8
    timeout_s: float = 60.0  # a request still running after this is a hang
    warmup: int = 0  # requests before the RSS baseline (and left out of the latencies)
    rss_interval_s: float = 30.0
    max_rss_growth: float = 0.05


@dataclass
class SoakRun:
    results: list[Result] = field(default_factory=list)  # after the warm-up
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    baseline_rss: int = 0
    warmup_done: int = 0
    elapsed_s: float = 0.0


def rotation(kinds: list[str]) -> list[str]:
    """One turn: each kind ``WEIGHTS`` times, interleaved (chat, stream, cancel, …, chat, stream, …)."""
    turn: list[str] = []
    for round_index in range(max(WEIGHTS.values())):
        turn += [kind for kind in kinds if WEIGHTS.get(kind, 1) > round_index]
    return turn


def _tree_pids(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def tree_rss(pid: int) -> int:
    """RSS of ``pid`` and its descendants (an engine core process, for instance), in bytes."""
    total = 0
    for member in _tree_pids(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in lines if line.startswith("VmRSS:")), 0)
    return total


async def soak(target: Target, spec: SoakSpec, pid: int | None, console: Console) -> SoakRun:
    run = SoakRun()
    turn = rotation(target.kinds())
    issued = 0
    started = time.monotonic()
    deadline = started + spec.duration_s
    total = spec.warmup + spec.requests
    read_rss: Callable[[], int] = (lambda: tree_rss(pid)) if pid is not None else (lambda: 0)

    def sample(progress: Progress) -> None:
        rss = read_rss()
        at = time.monotonic() - started
        run.rss.append((at, rss))
        failed = sum(1 for r in run.results if r.outcome != "ok")
        base = run.baseline_rss or rss
        growth = f"{(rss - base) / base * 100:+.1f}%" if base else "n/a"
        progress.console.print(
            f"{at:6.0f} s  {len(run.results):6d} requests  {failed} failed  "
            f"RSS {rss / 2**20:.0f} MB ({growth} from the baseline)"
        )

    limits = httpx.Limits(max_connections=spec.concurrency * 2, max_keepalive_connections=spec.concurrency)
    columns = (TextColumn("soak"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    async with httpx.AsyncClient(base_url=target.base_url, limits=limits, timeout=None) as client:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("soak", total=total)

            async def worker() -> None:
                nonlocal issued
                while issued < total and time.monotonic() < deadline:
                    n = issued
                    issued += 1
                    result = await run_one(client, target, turn[n % len(turn)], n, spec.timeout_s)
                    if n < spec.warmup:
                        run.warmup_done += 1
                        if run.warmup_done == spec.warmup:
                            run.baseline_rss = read_rss()
                    else:
                        run.results.append(result)
                    progress.advance(task)

            async def sampler() -> None:
                while True:
                    sample(progress)
                    await asyncio.sleep(spec.rss_interval_s)

            sampling = asyncio.ensure_future(sampler())
            try:
                await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
            finally:
                sampling.cancel()
            sample(progress)
    run.elapsed_s = time.monotonic() - started
    if not run.baseline_rss and run.rss:
        run.baseline_rss = run.rss[0][1]
    return run


def report(run: SoakRun, spec: SoakSpec, target: Target) -> dict[str, Any]:
    """The run as JSON-able figures, with the verdict and its reasons."""
    kinds: dict[str, Any] = {}
    for kind in target.kinds():
        results = [r for r in run.results if r.kind == kind]
        ok = [r.seconds * 1000 for r in results if r.outcome == "ok"]
        outcomes = Counter(r.outcome for r in results)
        kinds[kind] = {
            "requests": len(results),
            "ok": outcomes["ok"],
            "errors": {failure: outcomes[failure] for failure in FAILURES},
            "p50_ms": percentile(ok, 50) if ok else None,
            "p95_ms": percentile(ok, 95) if ok else None,
            "statuses": dict(Counter(str(r.status) for r in results)),
        }
    errors = {failure: sum(k["errors"][failure] for k in kinds.values()) for failure in FAILURES}
    final_rss = run.rss[-1][1] if run.rss else 0
    growth = (final_rss - run.baseline_rss) / run.baseline_rss if run.baseline_rss else None
    reasons = [f"{count} {failure}" for failure, count in errors.items() if count]
    if growth is not None and growth > spec.max_rss_growth:
        reasons.append(
            f"RSS grew {growth * 100:.1f}% after the warm-up (limit {spec.max_rss_growth * 100:.0f}%)"
        )
    examples = [f"{r.kind}: {r.outcome}: {r.detail}" for r in run.results if r.outcome != "ok"][:5]
    return {
        "requests": len(run.results),
        "warmup": run.warmup_done,
        "elapsed_s": run.elapsed_s,
        "concurrency": spec.concurrency,
        "timeout_s": spec.timeout_s,
        "kinds": kinds,
        "errors": errors,
        "rss": {
            "samples": [{"t_s": round(t, 1), "mb": rss / 2**20} for t, rss in run.rss],
            "baseline_mb": run.baseline_rss / 2**20,
            "final_mb": final_rss / 2**20,
            "growth_pct": growth * 100 if growth is not None else None,
            "limit_pct": spec.max_rss_growth * 100,
        },
        "passed": not reasons,
        "failures": reasons,
        "examples": examples,
    }


def render(figures: dict[str, Any], console: Console, title: str) -> None:
    table = Table(title=title)
    for column in ("kind", "requests", "ok", "p50 ms", "p95 ms", *FAILURES, "statuses"):
        table.add_column(column, justify="left" if column in ("kind", "statuses") else "right")
    for kind, row in figures["kinds"].items():
        p50, p95 = row["p50_ms"], row["p95_ms"]
        table.add_row(
            kind,
            str(row["requests"]),
            str(row["ok"]),
            f"{p50:.1f}" if p50 is not None else "-",
            f"{p95:.1f}" if p95 is not None else "-",
            *(str(row["errors"][failure]) for failure in FAILURES),
            " ".join(f"{status}×{count}" for status, count in sorted(row["statuses"].items())),
        )
    console.print(table)
    rss = figures["rss"]
    samples = Table(title="server RSS")
    samples.add_column("t s", justify="right")
    samples.add_column("MB", justify="right")
    for sample in rss["samples"]:
        samples.add_row(f"{sample['t_s']:.0f}", f"{sample['mb']:.1f}")
    console.print(samples)
    if rss["growth_pct"] is not None:
        console.print(
            f"RSS {rss['baseline_mb']:.1f} MB after the warm-up → {rss['final_mb']:.1f} MB at the end "
            f"({rss['growth_pct']:+.1f}%, limit {rss['limit_pct']:.0f}%)"
        )
    else:
        console.print("RSS not sampled: the server's process id is unknown (pass --pid)")
    for example in figures["examples"]:
        console.print(f"  [red]✗[/] {example}")
    verdict = "[green]passed[/]" if figures["passed"] else "[red]failed[/]: " + "; ".join(figures["failures"])
    console.print(
        f"soak {verdict}: {figures['requests']} requests in {figures['elapsed_s']:.0f} s "
        f"(+{figures['warmup']} warm-up), c={figures['concurrency']}"
    )
