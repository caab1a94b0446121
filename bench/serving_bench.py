"""Serving benchmark: the same engine called directly in-process and through the HTTP gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bench.lean_http import LeanHttpClient
from bench.loadgen import (
    LoadReport,
    LoadSpec,
    RequestTiming,
    closed_loop,
    direct_runner,
    http_runner,
    summarize,
)
from core.engine import Engine


@dataclass(frozen=True)
class Comparison:
    label: str
    spec: LoadSpec
    direct: LoadReport
    gateway: LoadReport

    def ratios(self) -> dict[str, float]:
        def ratio(a: float, b: float) -> float:
            return a / b if b else float("nan")

        return {
            "ttft_median": ratio(self.gateway.ttft_ms[0], self.direct.ttft_ms[0]),
            "e2el_median": ratio(self.gateway.e2el_ms[0], self.direct.e2el_ms[0]),
            "request_throughput": ratio(self.gateway.request_throughput, self.direct.request_throughput),
            "output_throughput": ratio(self.gateway.output_throughput, self.direct.output_throughput),
        }

    def overhead_ms(self) -> tuple[float, float]:
        """Gateway minus direct end-to-end latency, (median, p99)."""
        return (
            self.gateway.e2el_ms[0] - self.direct.e2el_ms[0],
            self.gateway.e2el_ms[1] - self.direct.e2el_ms[1],
        )


async def _interleaved(
    engine: Engine, session: object, base_url: str, model: str, spec: LoadSpec, block: int
) -> tuple[LoadReport, LoadReport]:
    """Concurrency 1 as alternating closed-loop blocks of ``block`` requests, direct then gateway, so
    machine drift hits both paths alike.

    With ``block=1`` (strict turns) the gateway process sits idle through every direct request before
    each of its own, which no closed loop does; waking from that costs about 0.2 ms more on a small VM.
    """
    direct_one = direct_runner(engine, spec)
    gateway_one = http_runner(session, base_url, model, spec)
    direct: list[RequestTiming] = []
    through: list[RequestTiming] = []
    spent = {"direct": 0.0, "gateway": 0.0}
    done = 0
    while done < spec.requests:
        size = min(block, spec.requests - done)
        for name, run_one, sink in (("direct", direct_one, direct), ("gateway", gateway_one, through)):
            for _ in range(size):
                timing = await run_one()
                spent[name] += timing.e2el
                sink.append(timing)
        done += size
    return summarize(1, direct, spent["direct"]), summarize(1, through, spent["gateway"])


@asynccontextmanager
async def http_client(kind: str, base_url: str) -> AsyncIterator[object]:
    """``lean``: a bare HTTP/1.1 reader (the default: what the client spends parsing is not the
    gateway's); ``aiohttp``: the client vLLM's benchmark uses."""
    if kind == "lean":
        lean = LeanHttpClient(base_url)
        try:
            yield lean
        finally:
            await lean.aclose()
        return
    if kind != "aiohttp":
        raise ValueError(f"{kind!r}: the client is lean or aiohttp")
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def compare(
    label: str,
    engine: Engine,
    base_url: str,
    model: str,
    specs: Sequence[LoadSpec],
    warmup: int = 4,
    client: str = "lean",
    block: int = 10,
) -> list[Comparison]:
    """Each load level after a warm-up of both paths: at concurrency 1 the two paths take turns in
    closed-loop blocks of ``block`` requests; above it, direct runs first, then the gateway."""
    results: list[Comparison] = []
    async with http_client(client, base_url) as session:
        for spec in specs:
            warm = LoadSpec(
                concurrency=spec.concurrency,
                requests=max(warmup, spec.concurrency),
                max_tokens=spec.max_tokens,
                prompt=spec.prompt,
                stream=spec.stream,
            )
            await closed_loop(direct_runner(engine, warm), warm)
            await closed_loop(http_runner(session, base_url, model, warm), warm)
            if spec.concurrency == 1:
                direct, through = await _interleaved(engine, session, base_url, model, spec, block)
            else:
                direct = summarize(spec.concurrency, *await closed_loop(direct_runner(engine, spec), spec))
                through = summarize(
                    spec.concurrency, *await closed_loop(http_runner(session, base_url, model, spec), spec)
                )
            results.append(Comparison(label=label, spec=spec, direct=direct, gateway=through))
    return results


def render(results: Sequence[Comparison], console: Console) -> None:
    table = Table(title="aihub serving benchmark: direct engine vs through the HTTP gateway")
    for column in (
        "engine",
        "mode",
        "conc",
        "path",
        "req/s",
        "out tok/s",
        "ttft_ms p50/p99",
        "tpot_ms p50/p99",
        "itl_ms p50/p99",
        "e2el_ms p50/p99",
    ):
        table.add_column(column, justify="right" if column not in ("engine", "mode", "path") else "left")
    for result in results:
        mode = "stream" if result.spec.stream else "json"
        for path, report in (("direct", result.direct), ("gateway", result.gateway)):
            table.add_row(
                result.label,
                mode,
                str(result.spec.concurrency),
                path,
                f"{report.request_throughput:.1f}",
                f"{report.output_throughput:.1f}",
                *(
                    f"{getattr(report, name)[0]:.2f} / {getattr(report, name)[1]:.2f}"
                    for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms")
                ),
            )
    console.print(table)
    ratios = Table(title="gateway / direct (same run)")
    for column in (
        "engine",
        "mode",
        "conc",
        "ttft p50",
        "e2el p50",
        "req/s",
        "out tok/s",
        "overhead ms p50",
        "p99",
    ):
        ratios.add_column(column, justify="right")
    for result in results:
        r = result.ratios()
        overhead = result.overhead_ms()
        ratios.add_row(
            result.label,
            "stream" if result.spec.stream else "json",
            str(result.spec.concurrency),
            f"{r['ttft_median']:.3f}",
            f"{r['e2el_median']:.3f}",
            f"{r['request_throughput']:.3f}",
            f"{r['output_throughput']:.3f}",
            f"{overhead[0]:+.3f}",
            f"{overhead[1]:+.3f}",
        )
    console.print(ratios)
