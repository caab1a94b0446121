"""Kill one of two real upstream processes under load: what had not started succeeds on the other, what
was streaming ends with a clean error event and ``[DONE]`` (never a cut connection), and ``/ready`` tells
the truth throughout."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx

from serving.settings import UpstreamSettings
from tests.support.upstreams import REMOTE_MODEL, fixed_latency_upstream, front_gateway

STREAMS = 6
LATER_REQUESTS = 12


def _stream(url: str, outcomes: list[str], first_chunk: threading.Barrier) -> None:
    """Reads the raw event stream: a clean end is the finish (or an error event), then ``[DONE]``."""
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "go"}], "stream": True}
    pieces = 0
    payloads: list[str] = []
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                payloads.append(line.removeprefix("data: "))
                event = json.loads(payloads[-1]) if payloads[-1] != "[DONE]" else {}
                if event.get("choices") and event["choices"][0]["delta"].get("content"):
                    pieces += 1
                    if pieces == 1:
                        first_chunk.wait(timeout=30)
    except httpx.HTTPError as exc:  # a cut connection: never acceptable
        outcomes.append(f"cut:{exc!r}")
        return
    if not payloads or payloads[-1] != "[DONE]":
        outcomes.append(f"no-done:{payloads[-1:]}")
    elif pieces == 40:
        outcomes.append("complete")
    else:
        error = json.loads(payloads[-2]).get("error", {})
        outcomes.append(
            "error-event" if pieces and "mid-stream" in error.get("message", "") else f"other:{error}"
        )


def test_killing_an_upstream_under_load(tmp_path: Path) -> None:
    # 40 tokens 50 ms apart: every stream is still running when the kill comes.
    timing = {"ttft_s": 0.01, "itl_s": 0.05, "tokens": 40}
    with (
        fixed_latency_upstream(tmp_path / "a", **timing) as a,
        fixed_latency_upstream(tmp_path / "b", **timing) as b,
    ):
        urls = [a.base_url + "/v1", b.base_url + "/v1"]
        model = {
            "id": "smollm2",
            "engine": "openai",
            "upstreams": [{"url": u, "model": REMOTE_MODEL} for u in urls],
        }
        upstream = UpstreamSettings(health_interval_s=0.2, health_timeout_s=0.5)
        with front_gateway(tmp_path, [model], upstream=upstream) as url:
            outcomes: list[str] = []
            first_chunk = threading.Barrier(STREAMS + 1)
            threads = [
                threading.Thread(target=_stream, args=(url, outcomes, first_chunk)) for _ in range(STREAMS)
            ]
            for thread in threads:
                thread.start()
            first_chunk.wait(timeout=30)  # every stream has its first token
            before = {u["url"]: u for u in httpx.get(f"{url}/ready").json()["models"]["smollm2"]["upstreams"]}
            on_a = before[urls[0]]["outstanding"]
            assert on_a + before[urls[1]]["outstanding"] == STREAMS and 1 <= on_a < STREAMS

            assert a.process is not None
            os.killpg(a.process.pid, signal.SIGKILL)
            a.process.wait(timeout=10)

            # Requests that had not started: all succeed, on the other upstream, right after the kill.
            body = {"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
            for _ in range(LATER_REQUESTS):
                response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
                assert response.status_code == 200, response.text
            for thread in threads:
                thread.join(timeout=60)
            assert sorted(outcomes) == sorted(["error-event"] * on_a + ["complete"] * (STREAMS - on_a))

            deadline = time.monotonic() + 5
            while True:
                ready = httpx.get(f"{url}/ready")
                states = {u["url"]: u["state"] for u in ready.json()["models"]["smollm2"]["upstreams"]}
                if states[urls[0]] == "down" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert ready.status_code == 200 and states == {urls[0]: "down", urls[1]: "up"}

            assert b.process is not None
            os.killpg(b.process.pid, signal.SIGKILL)
            b.process.wait(timeout=10)
            deadline = time.monotonic() + 5
            while httpx.get(f"{url}/ready").status_code != 503:
                assert time.monotonic() < deadline, "/ready still says ok with every upstream dead"
                time.sleep(0.1)
            response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
            assert response.status_code == 503
