"""Several OpenAI-compatible servers under the same closed-loop load, in one run.

Every contender gets the same client, prompt, model and ``max_tokens`` (streamed, temperature 0, so each
produces the same tokens). Per load level the contenders take turns in rounds, the order rotating each
round, so that drift of the machine falls on all of them alike.

Before each turn a contender answers one short request that is not timed: vLLM's engine parks its
reader after a second without work, and the first request after that waits about a second to wake it
(seen with every vLLM server here); a closed loop in its steady state never idles that long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bench.loadgen import LoadReport, LoadSpec, RequestTiming, closed_loop, http_runner, summarize
from bench.peers import Contender
from bench.serving_bench import http_client

PROMPT = "Write a long story about a dragon who guards a library in the mountains."


@dataclass(frozen=True)
class Level:
    concurrency: int
    requests: int  # per contender and round


@dataclass(frozen=True)
class Result:
    contender: str
    report: LoadReport


async def _run(contender: Contender, spec: LoadSpec, client: str) -> tuple[list[RequestTiming], float]:
    async with http_client(client, contender.base_url) as session:
        return await closed_loop(http_runner(session, contender.base_url, contender.model, spec), spec)


async def measure(
    contenders: Sequence[Contender],
    levels: Sequence[Level],
    *,
    max_tokens: int = 128,
    rounds: int = 2,
    client: str = "lean",
    console: Console | None = None,
) -> dict[int, list[Result]]:
    """Reports by concurrency, one per contender (its rounds pooled)."""
    results: dict[int, list[Result]] = {}
    for level in levels:
        spec = LoadSpec(
            concurrency=level.concurrency,
            requests=level.requests,
            max_tokens=max_tokens,
            prompt=PROMPT,
            time_limit_s=900.0,
        )
        warm = LoadSpec(
            concurrency=level.concurrency, requests=level.concurrency, max_tokens=16, prompt=PROMPT
        )
        wake = LoadSpec(concurrency=1, requests=1, max_tokens=2, prompt=PROMPT)
        for contender in contenders:
            await _run(contender, warm, client)
        pooled: dict[str, tuple[list[RequestTiming], float]] = {c.name: ([], 0.0) for c in contenders}
        for round_ in range(rounds):
            shift = round_ % len(contenders)
            for contender in [*contenders[shift:], *contenders[:shift]]:
                await _run(contender, wake, client)
                timings, seconds = await _run(contender, spec, client)
                done, spent = pooled[contender.name]
                pooled[contender.name] = (done + timings, spent + seconds)
                if console is not None:
                    console.print(f"  c={level.concurrency} round {round_ + 1}: {contender.name} done")
        results[level.concurrency] = [
            Result(name, summarize(level.concurrency, timings, seconds))
            for name, (timings, seconds) in pooled.items()
        ]
    return results


def render(title: str, results: dict[int, list[Result]], console: Console) -> None:
    table = Table(title=title)
    for column in ("conc", "server", "out tok/s", "req/s", "ttft ms p50/p99", "tpot ms p50", "e2el ms p50"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for concurrency, rows in results.items():
        for row in rows:
            report = row.report
            table.add_row(
                str(concurrency),
                row.contender,
                f"{report.output_throughput:.1f}",
                f"{report.request_throughput:.2f}",
                f"{report.ttft_ms[0]:.1f} / {report.ttft_ms[1]:.1f}",
                f"{report.tpot_ms[0]:.1f}",
                f"{report.e2el_ms[0]:.0f}",
            )
    console.print(table)


def ratio(results: dict[int, list[Result]], concurrency: int, name: str, baseline: str, figure: str) -> float:
    """``name``'s figure over ``baseline``'s at one load level: ``ttft`` (median) or ``throughput``."""
    by_name = {row.contender: row.report for row in results[concurrency]}
    mine, theirs = by_name[name], by_name[baseline]
    if figure == "ttft":
        return mine.ttft_ms[0] / theirs.ttft_ms[0]
    return mine.output_throughput / theirs.output_throughput


def as_json(results: dict[int, list[Result]]) -> dict[str, list[dict[str, object]]]:
    return {
        str(concurrency): [{"server": row.contender, **row.report.as_dict()} for row in rows]
        for concurrency, rows in results.items()
    }
