"""The eval-throughput benchmark against a real `aihub serve` child process with the fixed-latency double."""

import asyncio
from pathlib import Path

from aihub.gateway_process import GatewayProcess
from bench.eval_bench import measure
from hub.store import LocalStore


def test_eval_throughput_keeps_up_with_the_gateway(tmp_path: Path) -> None:
    model = {"id": "double", "engine": "fixed-latency", "options": {"ttft_s": 0.02, "itl_s": 0.005}}
    config = {
        "app": {"home": str(tmp_path / "home"), "models": [model], "embedders": [], "prepare_defaults": False}
    }
    with GatewayProcess(config, tmp_path, ready_timeout_s=60) as gateway:
        result = asyncio.run(
            measure(
                gateway.base_url,
                "double",
                LocalStore(tmp_path / "hub"),
                tmp_path,
                concurrency=8,
                items=64,
                rounds=2,
            )
        )
    assert result.gateway_rps > 20  # 8 clients, ~0.1 s per request
    # The target is 0.9 (`aihub eval bench` reports it); a short run on a shared 2-core machine is noisy.
    assert result.ratio > 0.7, result.as_dict()
