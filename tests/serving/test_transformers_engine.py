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


_LEFT_GENERATING = """
import asyncio, sys
from pathlib import Path
from core.chat import ChatMessage, GenerationRequest, SamplingParams
from serving.settings import ServingSettings
from serving.transformers_engine import TransformersEngine

engine = TransformersEngine("smol", Path(sys.argv[1]), ServingSettings(max_batch_size=2, torch_threads=1))


async def first_token() -> None:
    await engine.start()
    request = GenerationRequest(
        request_id="left",
        messages=(ChatMessage(role="user", content="Tell a very long story."),),
        params=SamplingParams(max_tokens=2000, temperature=0),
    )
    stream = engine.generate(request)
    await anext(stream)
    globals()["stream"] = stream  # never closed: the engine is still generating when the program ends


asyncio.new_event_loop().run_until_complete(first_token())
print("still generating:", engine.active_requests, flush=True)
"""


def test_a_program_that_exits_with_the_engine_generating_exits_cleanly(
    smollm2_path: Path, tmp_path: Path
) -> None:
    """Exit while the scheduler thread is inside a forward used to abort the process (SIGABRT, "terminate
    called without an active exception"): CPython ends such a daemon thread with pthread_exit once
    finalization has begun. The scheduler now stops its thread from an atexit hook."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "left_generating.py"
    script.write_text(_LEFT_GENERATING)
    done = subprocess.run(
        [sys.executable, str(script), str(smollm2_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert "still generating: 1" in done.stdout, done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
