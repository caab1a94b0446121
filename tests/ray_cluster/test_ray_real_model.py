"""The real TransformersEngine (SmolLM2-135M) as a Ray Serve model replica, its weights from the hub."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.model_config import ModelConfig
from ray_cluster.settings import ReplicaSettings
from serving.settings import ServingSettings
from tests.ray_cluster import ray_session as H

pytestmark = [pytest.mark.ray, pytest.mark.slow]


KB = (
    ("returns", "Returns", "Customers may return any product within 30 days of delivery for a full refund."),
    ("shipping", "Shipping", "Orders ship from the Lyon warehouse within 2 business days."),
)


def _push_rag_pipeline(store: object, work: Path) -> None:
    """A BM25 index, a prompt and `pipelines/kb` over the served model: `rag/kb` through Ray Serve."""
    from retrievers.documents import Document
    from retrievers.index_builder import BuildOptions, build_index

    built = build_index(
        [Document(doc_id=doc_id, title=title, text=text) for doc_id, title, text in KB],
        work,
        BuildOptions(backend="bm25"),
    )
    store.push("index", "indexes/kb", built.spec, {f: built.folder / f for f in built.files})
    prompt = store.push(
        "prompt",
        "prompts/kb",
        {
            "template": "{% for d in documents %}{{ d.text }}\n{% endfor %}Q: {{ question }}",
            "variables": ["question", "documents"],
        },
    )
    store.push(
        "pipeline",
        "pipelines/kb",
        {
            "model": "models/smollm2:latest",
            "prompt": prompt.pinned_ref,
            "indices": ["indexes/kb:latest"],
            "retrieval": {"mode": "bm25", "top_k": 1},
            "generation": {"temperature": 0, "max_tokens": 12},
        },
    )


@pytest.fixture(scope="module")
def session(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from aihub.default_models import _minilm_folder
    from hub.model_import import import_model_folder
    from hub.settings import HubSettings
    from hub.store import LocalStore
    from retrievers.settings import RetrieverSettings

    home = tmp_path_factory.mktemp("ray-real-home")
    store = LocalStore(HubSettings(home=home))
    import_model_folder(store, "models/smollm2", smollm2_path, context_length=8192)
    import_model_folder(store, "models/minilm", _minilm_folder(), context_length=256)
    _push_rag_pipeline(store, home / "index-build")
    spec = ModelConfig(id="smollm2", ref="models/smollm2:latest", engine="transformers")
    config = H.cluster_config(str(home), [spec], replicas={"smollm2": ReplicaSettings(num_cpus=0.5)})
    # One torch thread each: the machine has two cores, shared with the Ray processes.
    app = config.app.model_copy(
        update={
            "embedders": (ModelConfig(id="all-minilm-l6-v2", ref="models/minilm:latest"),),
            "default_embedder": "all-minilm-l6-v2",
        }
    )
    config = dataclasses.replace(
        config,
        app=app,
        serving=ServingSettings(max_batch_size=4, torch_threads=1),
        retrievers=RetrieverSettings(torch_threads=1, work_dir=home / "retrievers"),
    )
    ray_session = H.RaySession(config).start()
    yield ray_session
    ray_session.shutdown()


def test_real_model_answers_and_streams_through_serve(session: object) -> None:
    client = openai.OpenAI(base_url=f"{session.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    with client:
        [model] = [m for m in client.models.list() if m.id == "smollm2"]
        reply = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=12,
            temperature=0,
        )
        pieces = [
            event.choices[0].delta.content
            for event in client.chat.completions.create(
                model="smollm2",
                messages=[{"role": "user", "content": "What is the capital of France?"}],
                max_tokens=12,
                temperature=0,
                stream=True,
            )
            if event.choices and event.choices[0].delta.content
        ]
    assert model.id == "smollm2"
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 12
    assert reply.choices[0].message.content
    # Greedy decoding: the streamed text is the same answer, delivered in several pieces.
    assert len(pieces) > 1
    assert "".join(pieces) == reply.choices[0].message.content


async def test_context_overflow_from_the_replica_keeps_its_own_error(session: object) -> None:
    from ray import serve

    from core.errors import ContextLengthExceededError
    from ray_cluster.builder import model_deployment_name
    from ray_cluster.engine_proxy import EngineProxy

    handle = serve.get_deployment_handle(model_deployment_name("smollm2"), session.config.ray.app_name)
    proxy = EngineProxy("smollm2", handle)
    await proxy.start()
    assert proxy.info.context_length == 8192
    request = GenerationRequest(
        request_id="too-long",
        params=SamplingParams(max_tokens=9000),
        messages=(ChatMessage(role="user", content="hi"),),
    )
    with pytest.raises(ContextLengthExceededError):
        await anext(proxy.generate(request))


def test_embeddings_through_the_embedder_deployment(session: object) -> None:
    client = openai.OpenAI(base_url=f"{session.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    with client:
        result = client.embeddings.create(model="all-minilm-l6-v2", input=["a lighthouse", "a keeper"])
    assert [len(item.embedding) for item in result.data] == [384, 384]
    assert result.data[0].embedding != result.data[1].embedding


async def test_index_listing_comes_from_the_retriever_deployment(session: object) -> None:
    from ray import serve

    from ray_cluster.builder import RETRIEVER_DEPLOYMENT
    from ray_cluster.index_proxy import IndexProviderProxy

    proxy = IndexProviderProxy(serve.get_deployment_handle(RETRIEVER_DEPLOYMENT, session.config.ray.app_name))
    await proxy.refresh()
    assert [info.ref.split(":")[0] for info in proxy.list()] == ["indexes/kb"]


def test_rag_pipeline_through_serve(session: object) -> None:
    client = openai.OpenAI(base_url=f"{session.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    with client:
        raw = client.chat.completions.with_raw_response.create(
            model="rag/kb",
            messages=[{"role": "user", "content": "How many days do I have to return a product?"}],
        )
        streamed = client.chat.completions.create(
            model="rag/kb",
            messages=[{"role": "user", "content": "How many days do I have to return a product?"}],
            stream=True,
        )
        chunks = list(streamed)
    body = raw.http_response.json()
    assert raw.headers["x-aihub-composition"].startswith("sha256:")
    assert [c["doc_id"] for c in body["citations"]] == ["returns"]
    assert body["choices"][0]["message"]["content"]
    assert chunks[0].model_extra["citations"][0]["doc_id"] == "returns"
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed_text == body["choices"][0]["message"]["content"]
