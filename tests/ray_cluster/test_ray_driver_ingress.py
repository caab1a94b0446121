"""`aihub serve --ray --ingress driver`: the gateway on uvicorn in the driver, replicas over handles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import psutil
import pytest
import yaml

from aihub.gateway_process import free_port

pytestmark = pytest.mark.ray

MODEL = "double-driver"


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "aihub serve --ray exited early"
        try:
            if httpx.get(f"{base}/ready", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base}/ready not 200 after {timeout_s} s")


def test_driver_ingress_serves_chat_and_streams_then_stops_clean(tmp_path: Path) -> None:
    port = free_port()
    config = {
        "app": {
            "home": str(tmp_path / "home"),
            "prepare_defaults": False,
            "demo": False,
            "models": [
                {
                    "id": MODEL,
                    "engine": "fixed-latency",
                    "options": {"ttft_s": 0.02, "itl_s": 0.005, "tokens": 8},
                }
            ],
            "embedders": [],
        },
        "ray": {"num_cpus": 2, "default_model": {"num_cpus": 0.1}},
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    command = [sys.executable, "-m", "aihub.cli", "serve", "--ray", "--ingress", "driver"]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [*command, "--config", str(path), "--port", str(port)], env=env, stdout=log, stderr=log
    )
    log.close()  # the child holds its own copy
    base = f"http://127.0.0.1:{port}"
    descendants: list[psutil.Process] = []
    try:
        _wait_ready(base, process)
        descendants = psutil.Process(process.pid).children(recursive=True)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0)
        assert MODEL in [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert reply.usage is not None and reply.usage.completion_tokens == 8
        assert reply.choices[0].finish_reason == "stop"
        pieces = [
            event.choices[0].delta.content
            for event in client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            if event.choices and event.choices[0].delta.content
        ]
        assert len(pieces) == 8  # token by token through the generator handle, not buffered
        assert "".join(pieces) == reply.choices[0].message.content
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    _, alive = psutil.wait_procs(descendants, timeout=20)
    assert not alive, f"Ray processes left behind: {[p.pid for p in alive]}"
