"""Issue 20, row 7: chunked prefill in the batch scheduler, on a tiny random Llama.

A long prompt is prefilled in chunks of at most the step budget, running rows decode between its chunks,
and a short prompt that arrives with it is prefilled (and finishes) first; the tokens are the same as
with whole-prompt prefill.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from core.chat import SamplingParams  # noqa: E402
from serving.batch_scheduler import BatchScheduler, Sequence, SequenceEvent  # noqa: E402
from serving.detokenizer import IncrementalDetokenizer  # noqa: E402
from serving.sampling import TokenSampler  # noqa: E402
from serving.stop_matcher import StopMatcher  # noqa: E402

RUNNING = [1, 2, 3]  # generates while the others are prefilled
LONG = [10 + (i * 7) % 50 for i in range(100)]
SHORT = [5, 6, 7, 8, 9]


@pytest.fixture(scope="module")
def tiny_llama() -> Any:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


class DigitsTokenizer:
    def decode(self, ids: list[int], **_: Any) -> str:
        return "".join(f"<{i}>" for i in ids)


class RecordingModel:
    """The model, with a log of every forward: ("prefill", prompt name, first position, width) or
    ("decode", rows)."""

    def __init__(self, model: Any, prompts: dict[str, list[int]]) -> None:
        self.model = model
        self.config = model.config
        self.forward = model.forward  # for the scheduler's cache keyword probe
        self.prompts = prompts
        self.log: list[tuple[Any, ...]] = []

    def __call__(self, **inputs: Any) -> Any:
        ids = inputs["input_ids"]
        if "logits_to_keep" in inputs:  # prefill forwards keep one position
            start = int(inputs["position_ids"][0, 0])
            chunk = ids[0].tolist()
            name = next(n for n, p in self.prompts.items() if p[start : start + len(chunk)] == chunk)
            self.log.append(("prefill", name, start, len(chunk)))
        else:
            self.log.append(("decode", ids.shape[0]))
        return self.model(**inputs)


class Collector:
    def __init__(self, name: str, log: list[tuple[Any, ...]]) -> None:
        self.name, self.log = name, log
        self.text = ""
        self.done = threading.Event()

    def __call__(self, event: SequenceEvent) -> None:
        assert event.error is None
        if self.text == "" and event.text:
            self.log.append(("first token", self.name))
        self.text += event.text
        if event.finish_reason is not None:
            self.log.append(("finished", self.name))
            self.done.set()


def run(
    model: Any, budget: int | None, plan: list[tuple[str, list[int], int]]
) -> tuple[list, dict[str, str]]:
    recording = RecordingModel(model, {name: ids for name, ids, _ in plan})
    scheduler = BatchScheduler(
        recording, frozenset(), max_batch_size=4, max_prefills_per_step=4, max_prefill_tokens=budget
    )
    collectors = {}
    for name, ids, new_tokens in plan:
        collectors[name] = collect = Collector(name, recording.log)
        scheduler.submit(
            Sequence(
                prompt_ids=ids,
                max_new_tokens=new_tokens,
                sampler=TokenSampler(SamplingParams(temperature=0.0)),
                detokenizer=IncrementalDetokenizer(DigitsTokenizer(), ids),
                stopper=StopMatcher(()),
                emit=collect,
            )
        )
        if name == "running":  # already decoding when the others arrive
            scheduler.start()
            assert collect.done.wait(0) or _first_token(recording.log, name)
    for collect in collectors.values():
        assert collect.done.wait(30)
    scheduler.stop()
    return recording.log, {name: c.text for name, c in collectors.items()}


def _first_token(log: list[tuple[Any, ...]], name: str) -> bool:
    import time

    deadline = time.monotonic() + 10
    while ("first token", name) not in log:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_a_long_prompt_is_prefilled_in_chunks_between_decode_steps_and_after_a_short_one(tiny_llama):
    plan = [("running", RUNNING, 60), ("long", LONG, 3), ("short", SHORT, 3)]
    log, texts = run(tiny_llama, 16, plan)
    long_chunks = [i for i, entry in enumerate(log) if entry[:2] == ("prefill", "long")]
    assert all(entry[3] <= 16 for entry in log if entry[0] == "prefill")
    assert len(long_chunks) >= len(LONG) // 16
    assert [log[i][2] for i in long_chunks] == sorted(log[i][2] for i in long_chunks)  # in order
    # The running sequence decodes between any two chunks of the long prompt
    for before, after in itertools.pairwise(long_chunks):
        assert any(entry[0] == "decode" for entry in log[before:after]), (before, after)
    # The short prompt, submitted after the long one, is prefilled at once and done before the long one
    # even has its first token
    short_prefill = log.index(("prefill", "short", 0, len(SHORT)))
    assert short_prefill < long_chunks[1]
    assert log.index(("finished", "short")) < log.index(("first token", "long"))

    # The same tokens as with whole prompts prefilled in one forward each
    whole_log, whole_texts = run(tiny_llama, None, plan)
    assert ("prefill", "long", 0, len(LONG)) in whole_log
    assert texts == whole_texts
