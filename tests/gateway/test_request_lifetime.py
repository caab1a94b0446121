"""Issue 20, row 1: a generation stops when its client leaves (streamed or not), and at the server's
per-request deadline (``request_timeout_s``: a 504 ``request_timeout``, or an error event mid-stream)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import orjson
import pytest

from core.engine import Engine
from tests.support.served_models import SMOLLM2
from tests.support.shared_engine import SessionOwnedEngine

ATTACK = "Repeat the word banana forever"


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "scripted-double", "messages": [{"role": "user", "content": content}], **extra}


def test_a_non_streamed_client_that_leaves_stops_its_generation(make_app, scripted, serve):
    engine = scripted(pieces=[f" banana{i}" for i in range(100_000)], delay_s=0.005)
    with serve(make_app(engine)) as base_url, httpx.Client(base_url=base_url) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/chat/completions", json=chat(ATTACK), timeout=0.5)
        left = time.monotonic()
        assert engine.early_close.wait(timeout=1.0), "the generation went on after the client left"
        assert time.monotonic() - left < 1.0
        # The server is still there for others
        reply = client.post("/v1/chat/completions", json=chat("hi", max_tokens=1), timeout=5)
        assert reply.status_code == 200
    assert engine.closed_early[0] == engine.requests[0].request_id


def test_the_request_deadline_stops_a_non_streamed_generation_with_a_504(make_app, scripted, serve):
    engine = scripted(pieces=[f" banana{i}" for i in range(100_000)], delay_s=0.005)
    with serve(make_app(engine, request_timeout_s=0.5)) as base_url:
        started = time.monotonic()
        reply = httpx.post(f"{base_url}/v1/chat/completions", json=chat(ATTACK), timeout=10)
        assert time.monotonic() - started < 5
        assert engine.early_close.wait(timeout=1.0)
    assert reply.status_code == 504
    error = reply.json()["error"]
    assert error["code"] == "request_timeout"
    assert error["type"] == "server_error"
    assert "0.5 seconds" in error["message"]
    assert engine.finished == []


def test_the_request_deadline_ends_a_stream_with_an_error_event(make_app, scripted, serve, parse_sse):
    engine = scripted(pieces=[f" banana{i}" for i in range(100_000)], delay_s=0.005)
    with serve(make_app(engine, request_timeout_s=0.5)) as base_url:
        reply = httpx.post(f"{base_url}/v1/chat/completions", json=chat(ATTACK, stream=True), timeout=10)
        assert engine.early_close.wait(timeout=1.0)
    assert reply.status_code == 200
    events = [orjson.loads(data) for data in parse_sse(reply.text) if data != "[DONE]"]
    assert events[0]["choices"][0]["delta"]
    assert events[-1]["error"]["code"] == "request_timeout"
    assert engine.finished == []


def test_a_client_queued_for_the_engine_that_leaves_never_gets_generated(make_app, scripted, serve):
    """Leaving before the first token (a request waiting for a batch slot) cancels it too."""
    engine = scripted(pieces=[" late"], delay_s=3.0)
    with serve(make_app(engine)) as base_url, httpx.Client(base_url=base_url) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/chat/completions", json=chat("x", stream=True), timeout=0.5)
        assert engine.early_close.wait(timeout=1.0), "the queued request was not cancelled"
    assert engine.finished == []


def _attack(base_url: str, leave_after_s: float, stream: bool, left: list[float]) -> None:
    body = {"model": SMOLLM2, "messages": [{"role": "user", "content": ATTACK}], "max_tokens": 4000}
    body["temperature"] = 0.0
    with httpx.Client(base_url=base_url) as client:
        if not stream:
            with pytest.raises(httpx.ReadTimeout):
                client.post("/v1/chat/completions", json=body, timeout=leave_after_s)
        else:
            deadline = time.monotonic() + leave_after_s
            with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as reply:
                for _ in reply.iter_lines():
                    if time.monotonic() > deadline:
                        break
    left.append(time.monotonic())


def _wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.slow
def test_clients_that_leave_free_their_batch_slots_for_others(make_app, serve, transformers_engine: Engine):
    """The issue's repro on the transformers engine (8 batch slots): eight clients ask for 4000 tokens
    of bananas and leave after 2 s. Meanwhile a `max_tokens: 8` request waits for a slot; it gets one as
    soon as they leave, and their generations stop within a second."""
    engine: Any = transformers_engine
    app = make_app(SessionOwnedEngine(transformers_engine))
    with serve(app) as base_url:
        left: list[float] = []
        attackers = [threading.Thread(target=_attack, args=(base_url, 2.0, False, left)) for _ in range(8)]
        for thread in attackers:
            thread.start()
        assert _wait_until(lambda: engine.active_requests == 8, 10.0), "the attack did not fill the slots"
        short = {"model": SMOLLM2, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
        replies: list[tuple[httpx.Response, float]] = []

        def ask() -> None:
            sent = time.monotonic()
            reply = httpx.post(f"{base_url}/v1/chat/completions", json=short, timeout=60)
            replies.append((reply, time.monotonic() - sent))

        asking = threading.Thread(target=ask)
        asking.start()
        for thread in attackers:
            thread.join(timeout=30)
        assert len(left) == 8
        # The eight generations stopped within a second of their clients leaving (the short one may run)
        assert _wait_until(lambda: engine.active_requests <= 1, 1.0), "generation went on after leaving"
        asking.join(timeout=60)
        reply, waited = replies[0]
        assert reply.status_code == 200
        assert reply.json()["usage"]["completion_tokens"] <= 8
        assert waited < 15, f"the short request took {waited:.1f} s"
        assert _wait_until(lambda: engine.active_requests == 0, 1.0)

        # Streamed: the same
        left.clear()
        _attack(base_url, 1.0, True, left)
        assert _wait_until(lambda: engine.active_requests == 0, 1.0)
