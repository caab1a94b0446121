"""Reconciliation: a few hundred mixed requests through two ``aihub serve`` processes sharing one tenancy
database (SQLite file, or a real PostgreSQL). The ledger's token sums equal what the clients saw, exactly;
interrupted streams count what was generated before the client left."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from aihub.gateway_process import GatewayProcess
from hub.settings import HubSettings
from hub.store import LocalStore
from tenancy.build import load_secret
from tenancy.database import Database
from tenancy.keys import KeyStore
from tenancy.settings import TenancySettings
from tenancy.usage_report import usage_report
from tests.support.upstreams import ScriptedUpstreamDouble, scripted_upstream

pytestmark = pytest.mark.slow

TOKENS = 16
REQUESTS_PER_KIND = 30


def _hub(home: Path) -> None:
    """A pipeline over a BM25 index, composed on the fixed-latency model (pinned by name)."""
    from retrievers.documents import Document
    from retrievers.index_builder import BuildOptions, build_index

    store = LocalStore(HubSettings(home=home))
    weights = home / "model.safetensors"
    weights.write_bytes(b"stand-in bytes: the fixed-latency double has no weights")
    store.push(
        "model",
        "models/double",
        {"files": ["model.safetensors"], "context_length": 4096},
        files={"model.safetensors": weights},
    )
    documents = [
        Document(doc_id=f"d{i}", title=f"t{i}", text=f"fact number {i} about clusters") for i in range(5)
    ]
    built = build_index(documents, home / "build", BuildOptions(backend="bm25"))
    store.push("index", "indexes/facts", built.spec, {f: built.folder / f for f in built.files})
    prompt = store.push(
        "prompt",
        "prompts/facts",
        {
            "template": "{% for d in documents %}{{ d.text }}\n{% endfor %}{{ question }}",
            "variables": ["question", "documents"],
        },
    )
    spec = {
        "model": "models/double:latest",
        "prompt": prompt.pinned_ref,
        "indices": ["indexes/facts:latest"],
        "retrieval": {"mode": "bm25", "top_k": 2},
    }
    store.push("pipeline", "pipelines/facts", spec)


def _config(home: Path, database_url: str, embedder_url: str) -> dict[str, Any]:
    return {
        "app": {
            "home": str(home),
            "prepare_defaults": False,
            "demo": False,
            "models": [
                {
                    "id": "double",
                    "engine": "fixed-latency",
                    "options": {"ttft_s": 0.0, "itl_s": 0.005, "tokens": TOKENS},
                }
            ],
            "embedders": [
                {
                    "id": "remote-embedder",
                    "engine": "openai",
                    "upstreams": [{"url": embedder_url}],
                    "options": {"dimensions": 3},
                }
            ],
            "default_embedder": "remote-embedder",
        },
        "tenancy": {"enabled": True, "database_url": database_url, "ledger": {"flush_interval_s": 0.05}},
    }


def _plain(client: httpx.Client, model: str) -> tuple[int, int]:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": "how many facts"}],
            "max_tokens": random.randint(1, TOKENS),
        },
    )
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    return usage["prompt_tokens"], usage["completion_tokens"]


def _streamed(client: httpx.Client, model: str) -> tuple[int, int]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "tell me"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usage = None
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage") or usage
    assert usage is not None
    return usage["prompt_tokens"], usage["completion_tokens"]


def _embedding(client: httpx.Client) -> tuple[int, int]:
    response = client.post("/v1/embeddings", json={"model": "remote-embedder", "input": ["a", "b", "c"]})
    response.raise_for_status()
    return response.json()["usage"]["prompt_tokens"], 0


def _interrupted(client: httpx.Client) -> int:
    """Reads a few events, then leaves; returns how many text events it received."""
    body = {"model": "double", "messages": [{"role": "user", "content": "go on"}], "stream": True}
    received = 0
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
            if received == 4:
                break
    return received


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_ledger_matches_what_clients_saw(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _hub(home)
    if backend == "sqlite":
        database_url = f"sqlite:///{home / 'tenancy.db'}"
    else:
        database_url = request.getfixturevalue("postgres").new_database()
    settings = TenancySettings(enabled=True, database_url=database_url)
    keys_database = Database(database_url)
    token, _ = KeyStore(keys_database, load_secret(settings, home)).create("reconcile")
    keys_database.close()
    expected_prompt = expected_completion = 0
    interrupted_received: list[int] = []
    with scripted_upstream(ScriptedUpstreamDouble()) as embedder_url:
        config = _config(home, database_url, embedder_url)
        with (
            GatewayProcess(config, tmp_path / "a", ready_timeout_s=120) as a,
            GatewayProcess(config, tmp_path / "b", ready_timeout_s=120) as b,
        ):
            headers = {"authorization": f"Bearer {token}"}
            clients = [httpx.Client(base_url=g.base_url, headers=headers, timeout=30) for g in (a, b)]
            kinds = [
                "plain",
                "streamed",
                "rag",
                "rag-streamed",
                "embeddings",
                "interrupted",
            ] * REQUESTS_PER_KIND
            random.Random(7).shuffle(kinds)
            try:
                for index, kind in enumerate(kinds):
                    client = clients[index % 2]
                    if kind == "interrupted":
                        interrupted_received.append(_interrupted(client))
                        continue
                    if kind == "embeddings":
                        prompt, completion = _embedding(client)
                    elif kind in ("plain", "rag"):
                        prompt, completion = _plain(client, "double" if kind == "plain" else "rag/facts")
                    else:
                        prompt, completion = _streamed(
                            client, "double" if kind == "streamed" else "rag/facts"
                        )
                    expected_prompt += prompt
                    expected_completion += completion
            finally:
                for client in clients:
                    client.close()
        # Both gateways have stopped (SIGTERM): their ledgers flushed on the way out.
    database = Database(database_url)
    try:
        by_model = {row.group: row for row in usage_report(database, "reconcile", by="model")}
        interrupted = database.execute(
            "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM usage WHERE interrupted"
        )[0]
    finally:
        database.close()
    total_requests = sum(row.requests for row in by_model.values())
    assert total_requests == len(kinds)
    assert interrupted[0] == REQUESTS_PER_KIND
    finished_prompt = sum(row.prompt_tokens for row in by_model.values()) - int(interrupted[1])
    finished_completion = sum(row.completion_tokens for row in by_model.values()) - int(interrupted[2])
    assert (finished_prompt, finished_completion) == (expected_prompt, expected_completion)
    # Interrupted streams: at least what the client received, never the whole answer it did not wait for.
    assert sum(interrupted_received) <= int(interrupted[2]) < TOKENS * REQUESTS_PER_KIND
    assert set(by_model) == {"double", "rag/facts", "remote-embedder"}
    assert by_model["rag/facts"].requests == 2 * REQUESTS_PER_KIND
