"""The figures of `aihub bench upstream`: per contender, its ratios to the direct path, the issue's
targets judged on them, as a rich table, Markdown (for the README) and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from bench.upstream_bench import AIHUB, DIRECT, Measured, Phase

CAPTION = (
    "latency: c=1 non-streamed; TTFT: c=1 streamed; req/s and CPU: c={c} non-streamed "
    "(CPU: the upstream's own for direct, the proxy's own otherwise)"
)


@dataclass(frozen=True)
class Figures:
    """One contender's figures (milliseconds, requests per second) and its ratios to the others."""

    contender: str
    p50_ms: float  # concurrency 1, non-streamed, end to end
    p99_ms: float
    added_p50_ms: float  # minus direct's, same run
    added_p99_ms: float
    ttft_p50_ms: float  # concurrency 1, streamed
    ttft_p99_ms: float
    ttft_ratio: float  # over direct's
    requests_per_s: float  # at the load level, non-streamed
    throughput_ratio: float  # over direct's
    # CPU of the contender's own processes per request at the load level (direct: the upstream's; a
    # proxy: its own, the upstream's not counted); None when it was not started here.
    cpu_ms_per_request: float | None


def figures(measured: Measured, plan: Sequence[Phase]) -> dict[str, Figures]:
    plain, stream, load = (measured.reports[phase.key] for phase in plan)
    cpu = measured.cpu_ms[plan[2].key]
    base = plain[DIRECT], stream[DIRECT], load[DIRECT]
    return {
        name: Figures(
            contender=name,
            p50_ms=plain[name].e2el_ms[0],
            p99_ms=plain[name].e2el_ms[1],
            added_p50_ms=plain[name].e2el_ms[0] - base[0].e2el_ms[0],
            added_p99_ms=plain[name].e2el_ms[1] - base[0].e2el_ms[1],
            ttft_p50_ms=stream[name].ttft_ms[0],
            ttft_p99_ms=stream[name].ttft_ms[1],
            ttft_ratio=stream[name].ttft_ms[0] / base[1].ttft_ms[0],
            requests_per_s=load[name].request_throughput,
            throughput_ratio=load[name].request_throughput / base[2].request_throughput,
            cpu_ms_per_request=cpu[name],
        )
        for name in plain
    }


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured in this run (a contender was left out)


def verdicts(by_name: dict[str, Figures], peer: str, concurrency: int) -> list[Verdict]:
    """The issue's targets for aihub, each with the figure it was judged on."""
    aihub = by_name.get(AIHUB)
    if aihub is None:
        return []
    rows = [
        Verdict(
            "adds <= 1 ms p50, non-streamed, c=1", f"{aihub.added_p50_ms:+.2f} ms", aihub.added_p50_ms <= 1
        ),
        Verdict(
            "adds <= 3 ms p99, non-streamed, c=1", f"{aihub.added_p99_ms:+.2f} ms", aihub.added_p99_ms <= 3
        ),
        Verdict(
            "TTFT p50 ratio <= 1.05, c=1",
            f"{aihub.ttft_ratio:.4f} ({aihub.ttft_p50_ms - by_name[DIRECT].ttft_p50_ms:+.2f} ms)",
            aihub.ttft_ratio <= 1.05,
        ),
    ]
    other = by_name.get(peer)
    if other is None:
        rows.append(Verdict(f"req/s at c={concurrency} >= 5x {peer}'s", "not measured", None))
    else:
        times = aihub.requests_per_s / other.requests_per_s
        measured = f"{times:.2f}x"
        if aihub.cpu_ms_per_request and other.cpu_ms_per_request:
            # aihub's rate is bounded by the upstream's (see the ratio to direct); CPU per request is
            # what each proxy would need per request with an upstream to spare.
            cpu_times = other.cpu_ms_per_request / aihub.cpu_ms_per_request
            measured += f"; own CPU per request {cpu_times:.1f}x less than {peer}'s"
        rows.append(Verdict(f"req/s at c={concurrency} >= 5x {peer}'s", measured, times >= 5))
    rows.append(
        Verdict(
            f"req/s at c={concurrency} >= 0.9x direct",
            f"{aihub.throughput_ratio:.3f}x",
            aihub.throughput_ratio >= 0.9,
        )
    )
    return rows


def _cells(row: Figures) -> list[str]:
    direct = row.contender == DIRECT
    return [
        row.contender,
        f"{row.p50_ms:.2f}",
        f"{row.p99_ms:.2f}",
        "—" if direct else f"{row.added_p50_ms:+.2f}",
        "—" if direct else f"{row.added_p99_ms:+.2f}",
        f"{row.ttft_p50_ms:.2f}",
        f"{row.ttft_ratio:.3f}",
        f"{row.requests_per_s:.1f}",
        f"{row.throughput_ratio:.3f}",
        "—" if row.cpu_ms_per_request is None else f"{row.cpu_ms_per_request:.2f}",
    ]


def _columns(concurrency: int) -> list[str]:
    return [
        "path",
        "p50 ms",
        "p99 ms",
        "added p50",
        "added p99",
        "TTFT p50 ms",
        "TTFT / direct",
        f"req/s c={concurrency}",
        "req/s / direct",
        "CPU ms/req",
    ]


def _verdict_line(verdict: Verdict) -> str:
    state = {True: "met", False: "NOT MET", None: "not measured"}[verdict.met]
    return f"aihub {verdict.target}: {verdict.measured} — {state}"


def render(
    by_name: dict[str, Figures], verdict_rows: list[Verdict], concurrency: int, console: Console
) -> None:
    table = Table(
        title="One upstream: direct, through aihub, through LiteLLM (same client, same run)",
        caption=CAPTION.format(c=concurrency),
    )
    for column in _columns(concurrency):
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in by_name.values():
        table.add_row(*_cells(row))
    console.print(table)
    colour = {True: "green", False: "red", None: "yellow"}
    for verdict in verdict_rows:
        console.print(f"target: [{colour[verdict.met]}]{_verdict_line(verdict)}[/]")


def markdown(by_name: dict[str, Figures], verdict_rows: list[Verdict], concurrency: int) -> str:
    """The same table and verdicts as Markdown, for the README."""
    columns = _columns(concurrency)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in by_name.values()]
    lines += ["", CAPTION.format(c=concurrency), ""]
    lines += [f"- {_verdict_line(verdict)}" for verdict in verdict_rows]
    return "\n".join(lines) + "\n"


def as_json(
    measured: Measured,
    by_name: dict[str, Figures],
    verdict_rows: list[Verdict],
    setup: dict[str, object],
) -> dict[str, object]:
    return {
        "setup": setup,
        "figures": {name: asdict(row) for name, row in by_name.items()},
        "verdicts": [asdict(v) for v in verdict_rows],
        "reports": {
            phase: {name: report.as_dict() for name, report in rows.items()}
            for phase, rows in measured.reports.items()
        },
        "cpu_ms_per_request": measured.cpu_ms,
    }
