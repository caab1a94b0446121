"""`aihub bench upstream`: the upstream double direct and through aihub's openai engine, end to end.

The LiteLLM leg needs its own environment (made from PyPI on first use), so it is left out here.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.loadgen import RequestTiming, summarize
from bench.upstream_bench import BearerLeanClient, Measured, group_cpu_s, phases
from bench.upstream_bench_cli import _origin
from bench.upstream_report import Figures, figures, markdown, verdicts


def test_bench_upstream_runs_direct_and_aihub_and_judges_the_targets(tmp_path: Path) -> None:
    out = tmp_path / "upstream.json"
    table = tmp_path / "upstream.md"
    command = [sys.executable, "-m", "aihub.cli", "bench", "upstream", "--no-litellm"]
    command += ["--requests", "20", "--stream-requests", "10", "--load-requests", "64", "--rounds", "2"]
    command += ["--out", str(out), "--markdown", str(table)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "fixed-latency engine double" in result.stdout
    payload = json.loads(out.read_text())
    rows = payload["figures"]
    assert set(rows) == {"direct", "aihub"}
    direct, aihub = rows["direct"], rows["aihub"]
    reports = payload["reports"]
    # Every contender ran every request of every round.
    assert reports["c1_json"]["aihub"]["completed"] == 40
    assert reports["c1_stream"]["direct"]["completed"] == 20
    assert reports["c16_json"]["aihub"]["completed"] == 128
    # The double's floor: a 20 ms first token, then 15 tokens 1 ms apart; nobody answers faster.
    for row in (direct, aihub):
        assert row["p50_ms"] >= 35 and row["p99_ms"] >= row["p50_ms"]
        assert row["ttft_p50_ms"] >= 20 and row["requests_per_s"] > 0
        # Both servers were started here, so their CPU time was read: some, far less than a request.
        assert 0 <= row["cpu_ms_per_request"] < 35  # read in 10 ms ticks: a few per phase here
    # Ratios and differences come from the same run's figures.
    assert aihub["added_p50_ms"] == pytest.approx(aihub["p50_ms"] - direct["p50_ms"])
    assert aihub["added_p99_ms"] == pytest.approx(aihub["p99_ms"] - direct["p99_ms"])
    assert aihub["ttft_ratio"] == pytest.approx(aihub["ttft_p50_ms"] / direct["ttft_p50_ms"])
    assert aihub["throughput_ratio"] == pytest.approx(aihub["requests_per_s"] / direct["requests_per_s"])
    assert direct["ttft_ratio"] == 1 and direct["throughput_ratio"] == 1
    # A proxy adds time; on a busy machine a little noise either way, never a whole request.
    assert -5 < aihub["added_p50_ms"] < 35
    assert 0.2 < aihub["throughput_ratio"] < 1.5
    # One verdict per target; the LiteLLM one says it was not measured.
    judged = {verdict["target"]: verdict["met"] for verdict in payload["verdicts"]}
    assert len(judged) == 5
    assert judged["req/s at c=16 >= 5x LiteLLM's"] is None
    assert "target: aihub adds <= 1 ms p50" in result.stdout
    assert "| aihub |" in table.read_text()


def _row(name: str, p50: float, p99: float, ttft: float, rps: float, cpu: float | None) -> Figures:
    base = {"p50": 40.0, "p99": 45.0, "ttft": 21.0, "rps": 400.0}
    return Figures(
        contender=name,
        p50_ms=p50,
        p99_ms=p99,
        added_p50_ms=p50 - base["p50"],
        added_p99_ms=p99 - base["p99"],
        ttft_p50_ms=ttft,
        ttft_p99_ms=ttft,
        ttft_ratio=ttft / base["ttft"],
        requests_per_s=rps,
        throughput_ratio=rps / base["rps"],
        cpu_ms_per_request=cpu,
    )


def test_verdicts_from_figures() -> None:
    by_name = {
        "direct": _row("direct", 40, 45, 21, 400, 2.0),
        "aihub": _row("aihub", 40.8, 47.5, 21.9, 380, 1.2),
        "LiteLLM": _row("LiteLLM", 52, 70, 37, 70, 12.0),
    }
    judged = {v.target: (v.measured, v.met) for v in verdicts(by_name, "LiteLLM", 16)}
    assert judged["adds <= 1 ms p50, non-streamed, c=1"] == ("+0.80 ms", True)
    assert judged["adds <= 3 ms p99, non-streamed, c=1"] == ("+2.50 ms", True)
    assert judged["TTFT p50 ratio <= 1.05, c=1"] == ("1.0429 (+0.90 ms)", True)
    measured, met = judged["req/s at c=16 >= 5x LiteLLM's"]
    assert met is True and measured.startswith("5.43x") and "10.0x less" in measured
    assert judged["req/s at c=16 >= 0.9x direct"] == ("0.950x", True)
    assert verdicts({"direct": by_name["direct"]}, "LiteLLM", 16) == []
    text = markdown(by_name, verdicts(by_name, "LiteLLM", 16), 16)
    assert "| LiteLLM | 52.00 |" in text and "- aihub adds <= 1 ms p50" in text


def test_phases_and_origin() -> None:
    plan = phases(100, 40, 10, 16)
    assert [(p.key, p.concurrency, p.stream) for p in plan] == [
        ("c1_json", 1, False),
        ("c1_stream", 1, True),
        ("c16_json", 16, False),
    ]
    assert plan[2].requests == 32  # at least two requests per client under load
    assert _origin("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"
    assert _origin("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


def test_figures_from_reports() -> None:
    def timings(e2el: float, ttft: float) -> list[RequestTiming]:
        return [RequestTiming(start=0.0, ttft=ttft, e2el=e2el, output_tokens=16) for _ in range(4)]

    plan = phases(4, 4, 4, 2)
    reports = {
        "c1_json": {
            "direct": summarize(1, timings(0.04, 0.04), 0.16),
            "aihub": summarize(1, timings(0.041, 0.041), 0.164),
        },
        "c1_stream": {
            "direct": summarize(1, timings(0.04, 0.02), 0.16),
            "aihub": summarize(1, timings(0.041, 0.021), 0.164),
        },
        "c2_json": {
            "direct": summarize(2, timings(0.04, 0.04), 0.1),
            "aihub": summarize(2, timings(0.04, 0.04), 0.125),
        },
    }
    cpu: dict[str, dict[str, float | None]] = {key: {"direct": 2.0, "aihub": None} for key in reports}
    rows = figures(Measured(reports, cpu, 1), plan)
    assert rows["aihub"].added_p50_ms == pytest.approx(1.0)
    assert rows["aihub"].ttft_ratio == pytest.approx(1.05)
    assert rows["aihub"].throughput_ratio == pytest.approx(0.8)
    assert rows["direct"].cpu_ms_per_request == 2.0 and rows["aihub"].cpu_ms_per_request is None


def test_group_cpu_counts_the_process_group() -> None:
    busy = (
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", busy], start_new_session=True)
    try:
        for _ in range(100):  # until it has spun its 0.3 s of CPU
            if group_cpu_s(child.pid) >= 0.25:
                break
            time.sleep(0.05)
        assert 0.25 <= group_cpu_s(child.pid) < 5
        assert group_cpu_s(None) == 0.0
        assert group_cpu_s(os.getpgrp()) > 0  # this test run's own group
    finally:
        child.kill()
        child.wait()


async def test_bearer_client_sends_the_key() -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        seen.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = BearerLeanClient(f"http://127.0.0.1:{port}", "sk-test")
    try:
        async with client.post("/v1/chat/completions", b'{"a": 1}') as response:
            assert response.status == 200 and await response.read() == b"{}"
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert b"\r\nauthorization: Bearer sk-test\r\n" in seen[0]
    assert b"content-type: application/json\r\n" in seen[0]
