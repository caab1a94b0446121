"""`aihub bench limits`: what the rate limiter costs a request on the hot path.

One event loop calls ``admit``, reads the permit's headers (the gateway sends them on every answer)
and calls ``finish``, back to back, as one gateway process's requests would. Cases:

* ``no limits``: a key and project without any limit (the empty-permit fast path).
* ``limits, warm lease``: rpm, tpm, a day budget and a concurrency limit on the key and rpm on its
  project, all served from leases already taken: no database work.
* ``limits, lease / 100``: the same with leases of 100 requests' worth, so one admit in 100 waits for
  lease round trips: the amortised cost of the shared counters.

Each case is bounded by ``admits`` and by ``max_seconds``; per-admit latencies give p50 and p99.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from core.tenancy import Limits, Principal
from tenancy.database import Database
from tenancy.limits import DatabaseRateLimiter
from tenancy.projects import ProjectLimitStore
from tenancy.settings import LimitSettings

HUGE = 10**12  # limits nobody reaches in a benchmark run
WARMUP = 1000


@dataclass(frozen=True)
class LimitsFigure:
    backend: str
    case: str
    admits: int
    seconds: float
    p50_us: float
    p99_us: float

    @property
    def admits_per_s(self) -> float:
        return self.admits / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_us(self) -> float:
        return self.seconds / self.admits * 1e6 if self.admits else 0.0


async def _drive(
    limiter: DatabaseRateLimiter, principal: Principal, admits: int, max_seconds: float
) -> list[int]:
    for _ in range(WARMUP):  # project limits read, leases taken
        permit = await limiter.admit(principal)
        _ = permit.headers
        permit.finish(12, 20)
    samples: list[int] = []
    deadline = time.perf_counter() + max_seconds
    clock = time.perf_counter_ns
    while len(samples) < admits and time.perf_counter() < deadline:
        for _ in range(1000):
            started = clock()
            permit = await limiter.admit(principal)
            _ = permit.headers
            permit.finish(12, 20)
            samples.append(clock() - started)
    return samples


def _case(
    url: str,
    backend: str,
    case: str,
    key: Limits,
    project: Limits,
    settings: LimitSettings,
    admits: int,
    max_s: float,
) -> LimitsFigure:
    database = Database(url)
    projects = ProjectLimitStore(database, cache_s=3600)
    name = case.replace(" ", "-").replace(",", "").replace("/", "")
    if project != Limits():
        projects.set(name, project)
    limiter = DatabaseRateLimiter(database, settings, projects)
    principal = Principal(project=name, key_id=f"key_{name}", limits=key)
    try:
        samples = asyncio.run(_drive(limiter, principal, admits, max_s))
    finally:
        limiter.close()
        database.close()
    ordered = sorted(samples)
    return LimitsFigure(
        backend=backend,
        case=case,
        admits=len(samples),
        seconds=sum(samples) / 1e9,
        p50_us=statistics.median(ordered) / 1e3,
        p99_us=ordered[int(len(ordered) * 0.99) - 1] / 1e3,
    )


def run_limits_bench(
    admits: int, max_seconds: float, postgres_urls: list[str], console: Console
) -> list[LimitsFigure]:
    # Each request uses 32 tokens: token limits of 32 x HUGE lease 100 requests' worth at a time too.
    limited = Limits(
        rpm=HUGE, tpm=32 * HUGE, max_concurrency=1000, token_budget=32 * HUGE, budget_period="day"
    )
    project = Limits(rpm=HUGE)
    warm = LimitSettings()
    per_100 = LimitSettings(lease_fraction=100 / HUGE)
    figures: list[LimitsFigure] = []
    with tempfile.TemporaryDirectory(prefix="aihub-limits-bench-") as tmp:
        backends = [("sqlite", f"sqlite:///{Path(tmp) / 'tenancy.db'}")]
        backends += [(f"postgresql #{i + 1}", url) for i, url in enumerate(postgres_urls)]
        for backend, url in backends:
            for case, key, project_limits, settings in (
                ("no limits", Limits(), Limits(), warm),
                ("limits, warm lease", limited, project, warm),
                ("limits, lease / 100", limited, project, per_100),
            ):
                figure = _case(url, backend, case, key, project_limits, settings, admits, max_seconds)
                figures.append(figure)
    render(figures, console)
    return figures


def render(figures: list[LimitsFigure], console: Console) -> None:
    table = Table(title="rate limiter: admit + headers + finish, one event loop")
    for column in ("backend", "case", "admits", "admits/s", "mean µs", "p50 µs", "p99 µs"):
        table.add_column(column, justify="left" if column in ("backend", "case") else "right")
    for f in figures:
        table.add_row(
            f.backend,
            f.case,
            str(f.admits),
            f"{f.admits_per_s:,.0f}",
            f"{f.mean_us:.2f}",
            f"{f.p50_us:.2f}",
            f"{f.p99_us:.2f}",
        )
    console.print(table)
