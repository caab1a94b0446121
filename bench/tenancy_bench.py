"""What tenancy costs on the hot path: the same gateway with tenancy off, and on (a database key, its
limits, the usage ledger), in one run, the same client, taking turns.

Both serve the fixed-latency engine double with no delay (it generates no language; a stand-in for an
engine), so the difference is the gateway's own work: authentication, limits, the ledger row.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from aihub.gateway_process import GatewayProcess
from bench.lean_http import LeanHttpClient

MODEL = "fixed-latency-double"
DOUBLE = {"ttft_s": 0.0, "itl_s": 0.0, "tokens": 16}
BODY = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16})


@dataclass
class Leg:
    name: str
    url: str
    headers: bytes
    latencies: list[float]


def _config(home: Path, tenancy: dict[str, Any] | None) -> dict[str, Any]:
    app = {
        "home": str(home),
        "prepare_defaults": False,
        "demo": False,
        "embedders": [],
        "default_embedder": None,
    }
    app["models"] = [{"id": MODEL, "engine": "fixed-latency", "options": DOUBLE}]
    return {"app": app, **({"tenancy": tenancy} if tenancy is not None else {})}


async def _turn(leg: Leg, requests: int) -> None:
    client = LeanHttpClient(leg.url)
    try:
        for _ in range(requests):
            started = time.perf_counter()
            async with client.post("/v1/chat/completions", BODY, headers=leg.headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{leg.name}: status {response.status}")
            leg.latencies.append(time.perf_counter() - started)
    finally:
        await client.aclose()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _load(leg: Leg, requests: int, concurrency: int) -> None:
    """``requests`` spread over ``concurrency`` sequential clients (a closed loop)."""
    share = requests // concurrency
    await asyncio.gather(*(_turn(Leg(leg.name, leg.url, leg.headers, []), share) for _ in range(concurrency)))


def _soak(leg: Leg, process: GatewayProcess, requests: int, console: Console) -> dict[str, float]:
    """RSS of the tenancy-on gateway over ``requests`` requests at c=8, sampled every tenth."""
    step = max(requests // 10, 8)
    samples: list[float] = []
    for _ in range(10):
        asyncio.run(_load(leg, step, 8))
        samples.append(process.rss_bytes() / 2**20)
    growth = (samples[-1] - samples[0]) / samples[0] * 100  # from the first sample: warm-up done
    console.print(
        f"soak, tenancy on, {step * 10} requests at c=8: RSS "
        + " → ".join(f"{mb:.0f}" for mb in samples)
        + f" MB; growth after the first tenth {growth:+.1f}% (target ≤ 5%)"
    )
    return {"soak requests": float(step * 10), "soak rss first MB": samples[0], "soak rss growth %": growth}


def run_tenancy_bench(
    work: Path, requests: int, rounds: int, console: Console, soak: int = 0
) -> dict[str, float]:
    """Rounds of ``requests`` sequential non-streamed requests per leg, the order alternating."""
    from core.tenancy import Limits
    from tenancy.build import load_secret
    from tenancy.database import Database
    from tenancy.keys import KeyStore
    from tenancy.settings import TenancySettings

    home_on = work / "on"
    home_on.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{home_on / 'tenancy.db'}"
    tenancy = {"enabled": True, "database_url": database_url}
    database = Database(database_url)
    # Limits high enough never to refuse: what is measured is their bookkeeping.
    limits = Limits(rpm=10_000_000, tpm=10_000_000_000, max_concurrency=1000)
    secret = load_secret(TenancySettings(enabled=True, database_url=database_url), home_on)
    token, _ = KeyStore(database, secret).create("bench", limits=limits)
    database.close()
    with (
        GatewayProcess(_config(work / "off", None), work / "off", ready_timeout_s=120) as off,
        GatewayProcess(_config(home_on, tenancy), work / "on-gw", ready_timeout_s=120) as on,
    ):
        legs = [
            Leg("tenancy off", off.base_url, b"", []),
            Leg(
                "tenancy on (key, limits, ledger)",
                on.base_url,
                b"authorization: Bearer %s\r\n" % token.encode(),
                [],
            ),
        ]
        for leg in legs:  # warm-up, not measured
            asyncio.run(_turn(Leg(leg.name, leg.url, leg.headers, []), 200))
        for index in range(rounds):
            for leg in legs if index % 2 == 0 else reversed(legs):
                asyncio.run(_turn(leg, requests))
        soaked = _soak(legs[1], on, soak, console) if soak else {}
    table = Table(
        title=f"Tenancy on the hot path: {rounds} rounds × {requests} requests per leg, c=1, non-streamed"
    )
    for column in ("leg", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(column, justify="right" if column != "leg" else "left")
    figures: dict[str, float] = {}
    for leg in legs:
        p50, p99 = _percentile(leg.latencies, 0.5) * 1000, _percentile(leg.latencies, 0.99) * 1000
        table.add_row(leg.name, f"{p50:.3f}", f"{p99:.3f}", f"{statistics.fmean(leg.latencies) * 1000:.3f}")
        figures[f"{leg.name} p50 ms"] = p50
        figures[f"{leg.name} p99 ms"] = p99
    added = figures[f"{legs[1].name} p50 ms"] - figures[f"{legs[0].name} p50 ms"]
    figures["added p50 ms"] = added
    figures.update(soaked)
    console.print(table)
    verdict = "met" if added <= 0.3 else "not met"
    console.print(f"tenancy adds {added:+.3f} ms at p50 (target ≤ 0.3 ms: {verdict})")
    return figures
