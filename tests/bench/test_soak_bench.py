"""`aihub bench soak`: a short bounded run end to end, and its verdict on hangs, 5xx and RSS growth."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.soak import SoakRun, SoakSpec, report, rotation
from bench.soak_traffic import FAILURES, Result, Target, run_one
from tests.support.upstreams import REMOTE_MODEL, ScriptedUpstreamDouble, scripted_upstream

KINDS = {"chat", "stream", "cancel", "oversized", "rag", "embeddings", "search"}


@pytest.mark.slow
def test_short_soak_of_a_started_server_passes_and_reports_every_kind(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, "-m", "aihub.cli", "bench", "soak", "--requests", "400", "--duration", "100"]
    command += ["--rss-interval", "5", "--concurrency", "4", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "soak passed" in result.stdout
    figures = json.loads(out.read_text())
    assert set(figures["kinds"]) == KINDS
    for kind, row in figures["kinds"].items():
        assert row["requests"] > 0 and row["ok"] == row["requests"], (kind, row)
        assert 0 < row["p50_ms"] <= row["p95_ms"] < figures["timeout_s"] * 1000
    assert set(figures["kinds"]["oversized"]["statuses"]) <= {"400", "413"}
    assert figures["errors"] == dict.fromkeys(FAILURES, 0) and figures["passed"]
    assert sum(row["requests"] for row in figures["kinds"].values()) == figures["requests"] <= 400
    rss = figures["rss"]
    assert len(rss["samples"]) >= 2 and rss["baseline_mb"] > 50 and rss["growth_pct"] <= rss["limit_pct"]


def _run(*results: Result, baseline: int = 100, final: int = 100) -> SoakRun:
    return SoakRun(results=list(results), rss=[(0.0, baseline), (30.0, final)], baseline_rss=baseline)


def test_the_verdict_fails_on_5xx_hangs_and_rss_growth() -> None:
    target = Target("http://unused", "m")
    spec = SoakSpec(requests=10, duration_s=10)
    ok = Result("chat", "ok", 0.01, 200)
    assert report(_run(ok, ok), spec, target)["passed"]
    failed = report(_run(ok, Result("stream", "5xx", 0.01, 502), Result("chat", "hang", 60.0)), spec, target)
    assert not failed["passed"] and failed["errors"]["5xx"] == 1 and failed["errors"]["hang"] == 1
    grown = report(_run(ok, baseline=100, final=106), spec, target)
    assert not grown["passed"] and "RSS grew 6.0%" in grown["failures"][0]
    assert report(_run(ok, baseline=100, final=104), spec, target)["passed"]


def test_kinds_without_their_part_are_not_sent() -> None:
    assert set(rotation(Target("http://x", "m").kinds())) == {"chat", "stream", "cancel", "oversized"}
    full = rotation(Target("http://x", "m", "rag/p", "e", "indexes/i:latest").kinds())
    assert full.count("chat") == 3 and full.count("oversized") == 1 and set(full) == KINDS


def test_a_request_past_its_timeout_is_a_hang_and_a_5xx_is_counted() -> None:
    async def one(url: str, kind: str, timeout_s: float) -> Result:
        async with httpx.AsyncClient(base_url=url.removesuffix("/v1")) as client:
            return await run_one(client, Target(url.removesuffix("/v1"), REMOTE_MODEL), kind, 0, timeout_s)

    with scripted_upstream(ScriptedUpstreamDouble(mode="hang")) as url:
        assert asyncio.run(one(url, "chat", 0.5)).outcome == "hang"
    # The others answer at once; a generous bound keeps a busy test machine from turning them into hangs
    # (a cut stream took longer than 0.5 s once in a full CI-like run).
    with scripted_upstream(ScriptedUpstreamDouble(mode="status", status=503)) as url:
        result = asyncio.run(one(url, "stream", 10.0))
        assert (result.outcome, result.status) == ("5xx", 503)
    with scripted_upstream(ScriptedUpstreamDouble(mode="cut")) as url:
        assert asyncio.run(one(url, "stream", 10.0)).outcome == "cut"
