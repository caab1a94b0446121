"""Prompt templates that try to spend unbounded time or memory (issue 20, row 3): they are stopped, and
the event loop keeps answering meanwhile (rendering runs in a thread)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.errors import AihubError, ContextLengthExceededError
from core.template_limits import MAX_RANGE
from gateway.app import create_app
from gateway.prompts import RENDER_TIME_LIMIT_S, PromptTemplate
from gateway.settings import GatewaySettings
from tests.gateway import composition_doubles as D

REPEAT = "{{ 'x' * 20000000 }} {{ question }}"
LOOPS = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}{{ question }}"
PRINTING_LOOPS = "{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}"


def test_a_huge_repetition_is_refused_before_it_is_built() -> None:
    started = time.monotonic()
    with pytest.raises(ContextLengthExceededError):
        PromptTemplate.compile(REPEAT, ["question"]).render({"question": "q"})
    assert time.monotonic() - started < 0.5


def test_output_is_capped_while_it_streams() -> None:
    prompt = PromptTemplate.compile(PRINTING_LOOPS, ["question"])
    with pytest.raises(ContextLengthExceededError, match="longer than 1000 characters"):
        prompt.render({"question": "q"}, max_chars=1000)


def test_loops_stop_at_the_time_limit_and_range_is_bounded() -> None:
    started = time.monotonic()
    with pytest.raises(AihubError, match="time limit"):
        PromptTemplate.compile(LOOPS, ["question"]).render({"question": "q"})
    assert time.monotonic() - started < RENDER_TIME_LIMIT_S + 1.5
    with pytest.raises(AihubError, match="range"):
        PromptTemplate.compile("{{ range(10 ** 9) | length }}", ["question"]).render({"question": "q"})
    ordinary = PromptTemplate.compile(
        "{% for d in documents %}{{ loop.index }}/{{ loop.length }} {{ d }}\n{% else %}none{% endfor %}",
        ["documents"],
    )
    assert ordinary.render({"documents": ["a", "b"]}) == "1/2 a\n2/2 b\n"
    assert ordinary.render({"documents": []}) == "none"
    assert len(PromptTemplate.compile("{{ range(n) | list }}", ["n"]).render({"n": MAX_RANGE})) > MAX_RANGE


def test_template_attacks_leave_the_server_responsive(tmp_path: Path, serve: Callable[[Any], Any]) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    D.push_pipeline(hub, name="pipelines/repeat", template=REPEAT)
    D.push_pipeline(hub, name="pipelines/loops", template=LOOPS)
    app = create_app(GatewaySettings(), hub.services)
    with serve(app) as base_url, ThreadPoolExecutor(4) as pool:

        def attack(model: str) -> tuple[httpx.Response, float]:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            started = time.monotonic()
            response = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)
            return response, time.monotonic() - started

        assert httpx.get(f"{base_url}/health").status_code == 200
        attacks = [pool.submit(attack, model) for model in ("rag/loops", "rag/loops", "rag/repeat")]
        health: list[float] = []
        while not all(future.done() for future in attacks):
            started = time.monotonic()
            assert httpx.get(f"{base_url}/health", timeout=30).status_code == 200
            health.append(time.monotonic() - started)
            time.sleep(0.05)
        results = [future.result() for future in attacks]
    loops, _, repeat = results
    assert repeat[0].status_code == 400
    assert repeat[0].json()["error"]["code"] == "context_length_exceeded"
    assert loops[0].status_code != 200
    assert set(loops[0].json()["error"]) == {"message", "type", "param", "code"}
    assert loops[1] >= RENDER_TIME_LIMIT_S * 0.9  # stopped by its time limit, not finished
    assert len(health) >= 3
    assert max(health) < 1.0, health
