"""What only the transformers engine does: exact equality with Hugging Face's own generate (float32), its
own continuous-batching counters, and the GGUF conversion. The engine contract both engines pass is in
``test_engine_contract.py``."""

import asyncio
import time
from pathlib import Path

import pytest

from serving.transformers_engine import TransformersEngine
from tests.support.generation_requests import chat, completion, run

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(transformers_engine: TransformersEngine) -> TransformersEngine:
    return transformers_engine


async def test_streamed_text_equals_the_whole_decoded_output(
    engine: TransformersEngine, smollm2_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt = "Translate into French and German: the café is near the lake. Café:"
    text, chunks = await run(engine, completion(prompt, temperature=0, max_tokens=30))
    assert all("\ufffd" not in chunk.text for chunk in chunks)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=30, do_sample=False, attention_mask=torch.ones_like(ids))
    new_ids = out[0, ids.shape[1] :]
    reference = tokenizer.decode(new_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert text == reference
    assert chunks[-1].completion_tokens == len(new_ids)
    assert text.startswith(" ") or text[:1].isalnum() or text[:1] in "\n'\""


async def test_concurrent_requests_share_the_batch_and_match_alone(engine: TransformersEngine) -> None:
    prompts = [
        "What is the capital of France?",
        "Name three colours.",
        "Explain in one sentence why the sky is blue, please, in simple words for a child.",
        "Say hello.",
    ]
    requests = [chat(p, temperature=0, max_tokens=16) for p in prompts]
    alone = [(await run(engine, r))[0] for r in requests]
    before = engine.stats.batched_steps
    together = await asyncio.gather(*(run(engine, r) for r in requests))
    assert engine.stats.batched_steps > before
    assert engine.stats.max_batch_size_seen >= 2
    # Left padding + masks keep each row's computation the same up to float rounding; on these prompts
    # the greedy choices agree exactly.
    assert [text for text, _ in together] == alone


def test_conversion_is_complete_and_not_redone(smollm2_path: Path) -> None:
    from serving.gguf_convert import COMPLETE_MARKER, convert_gguf_to_safetensors, find_smollm2_gguf

    names = {path.name for path in smollm2_path.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "generation_config.json",
        COMPLETE_MARKER,
    } <= names
    assert "quantization_config" not in (smollm2_path / "config.json").read_text()
    assert not [p for p in smollm2_path.parent.iterdir() if p.name.startswith(".")]  # no temp dir left
    stages: list[str] = []
    started = time.perf_counter()
    again = convert_gguf_to_safetensors(find_smollm2_gguf(), smollm2_path, lambda s, d, t: stages.append(s))
    assert again == smollm2_path
    assert time.perf_counter() - started < 1.0
    assert stages == []
