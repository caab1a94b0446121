"""SIGTERM to a real `aihub serve` with streams open: new work is refused and `/ready` says draining,
streams that finish within the grace finish, the others end with an error event and `[DONE]`, a
non-streamed request still running is answered 503, and the process exits soon after the grace with
no traceback in its log.

The model is the fixed-latency engine double (a test double: it generates no language), so the streams'
lengths are exact.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from aihub.gateway_process import GatewayProcess

MODEL = "fixed-latency-double"
GRACE_S = 2.0
ITL_S = 0.05
SHORT_TOKENS = 10  # about 0.5 s: finishes within the grace
LONG_TOKENS = 400  # about 20 s: still streaming when the grace is over


def _config(home: Path) -> dict[str, Any]:
    return {
        "app": {
            "home": str(home),
            "prepare_defaults": False,
            "demo": False,
            "embedders": [],
            "default_embedder": None,
            "models": [
                {
                    "id": MODEL,
                    "engine": "fixed-latency",
                    "options": {"ttft_s": 0.01, "itl_s": ITL_S, "tokens": LONG_TOKENS},
                }
            ],
        },
        "gateway": {"shutdown_grace_s": GRACE_S},
    }


def _body(max_tokens: int, stream: bool) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "go"}],
        "max_tokens": max_tokens,
        "stream": stream,
    }


class Stream(threading.Thread):
    """One streamed request, read to its end; ``payloads`` are its events, ``failure`` a broken transport."""

    def __init__(self, url: str, max_tokens: int, first: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.url, self.max_tokens, self.first = url, max_tokens, first
        self.payloads: list[str] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            body = _body(self.max_tokens, True)
            with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=body, timeout=60) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.payloads.append(line.removeprefix("data: "))
                        if len(self.payloads) == 1:
                            self.first.wait(timeout=30)
        except BaseException as exc:  # recorded for the test's own assertions
            self.failure = exc


def _complete(payloads: list[str]) -> bool:
    events = [json.loads(p) for p in payloads[:-1]]
    finishes = [c["finish_reason"] for e in events for c in e.get("choices", []) if c.get("finish_reason")]
    return payloads[-1] == "[DONE]" and finishes == ["length"] and all("error" not in e for e in events)


def test_sigterm_drains_then_ends_open_streams_cleanly(tmp_path: Path) -> None:
    with GatewayProcess(_config(tmp_path / "home"), tmp_path, ready_timeout_s=120) as served:
        url = served.base_url
        first = threading.Barrier(5)
        streams = [Stream(url, SHORT_TOKENS, first) for _ in range(2)]
        streams += [Stream(url, LONG_TOKENS, first) for _ in range(2)]
        for stream in streams:
            stream.start()
        first.wait(timeout=30)  # all four are streaming

        unary: dict[str, httpx.Response] = {}
        long_unary = threading.Thread(
            target=lambda: unary.setdefault(
                "r", httpx.post(f"{url}/v1/chat/completions", json=_body(LONG_TOKENS, False), timeout=60)
            ),
            daemon=True,
        )
        long_unary.start()
        time.sleep(0.3)

        assert served.process is not None
        sent = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = httpx.get(f"{url}/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200  # alive, just not taking work
        refused = httpx.post(f"{url}/v1/chat/completions", json=_body(4, False), timeout=5)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "server_shutting_down"
        assert refused.headers["connection"] == "close"

        served.process.wait(timeout=GRACE_S + 10)
        took = time.monotonic() - sent
        for stream in streams:
            stream.join(timeout=10)
        long_unary.join(timeout=10)

    assert GRACE_S <= took <= GRACE_S + 3.0, took
    for stream in streams:
        assert stream.failure is None, f"a stream was cut: {stream.failure!r}"
    short, long = streams[:2], streams[2:]
    for stream in short:
        assert _complete(stream.payloads), stream.payloads[-3:]
    for stream in long:
        assert stream.payloads[-1] == "[DONE]"
        error = json.loads(stream.payloads[-2])["error"]
        assert error["code"] == "server_shutting_down" and error["type"] == "server_error"
        assert 1 < len(stream.payloads) - 2 < LONG_TOKENS  # some tokens came, not all
    response = unary["r"]
    assert response.status_code == 503 and response.json()["error"]["code"] == "server_shutting_down"
    log = served.log_path.read_text()
    assert "Traceback" not in log and "timeout graceful shutdown exceeded" not in log, log[-3000:]
    assert "draining: 5 request(s) in flight" in log
