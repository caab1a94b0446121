"""Left-padded batching on a tiny random Llama: batched decode logits equal each sequence decoded alone."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from serving.kv_batch import KVBatch, cache_keyword  # noqa: E402


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


def prefill(model, batch: KVBatch, ids: list[int]):
    cache = batch.new_cache()
    out = model(
        input_ids=torch.tensor([ids]),
        position_ids=torch.arange(len(ids)).unsqueeze(0),
        use_cache=True,
        **{cache_keyword(model): cache},
    )
    return cache, int(out.logits[0, -1].argmax())


def alone(model, ids: list[int], steps: int) -> list[torch.Tensor]:
    """Last-position logits of ``steps`` greedy decode steps for one unpadded sequence."""
    batch = KVBatch(model.config, cache_keyword(model))
    cache, token = prefill(model, batch, ids)
    batch.add(cache, len(ids), token)
    rows = []
    for _ in range(steps):
        logits = model(**batch.step_inputs()).logits[:, -1]
        rows.append(logits[0])
        batch.last_tokens = logits.argmax(-1)
    return rows


@torch.inference_mode()
def test_joining_and_leaving_rows_keeps_each_rows_logits(tiny_llama) -> None:
    prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [3, 3, 3, 3]]
    expected = [alone(tiny_llama, ids, 6) for ids in prompts]
    batch = KVBatch(tiny_llama.config, cache_keyword(tiny_llama))
    got: list[list[torch.Tensor]] = [[], [], []]
    rows = [0]  # which prompt each batch row holds
    cache, token = prefill(tiny_llama, batch, prompts[0])
    batch.add(cache, len(prompts[0]), token)
    for step in range(8):
        if step == 1:  # a shorter sequence joins a running batch
            cache, token = prefill(tiny_llama, batch, prompts[1])
            batch.add(cache, len(prompts[1]), token)
            rows.append(1)
        if step == 2:
            cache, token = prefill(tiny_llama, batch, prompts[2])
            batch.add(cache, len(prompts[2]), token)
            rows.append(2)
        logits = tiny_llama(**batch.step_inputs()).logits[:, -1]
        batch.last_tokens = logits.argmax(-1)
        for row, prompt in enumerate(rows):
            got[prompt].append(logits[row])
        if step == 5:  # the first (longest) row leaves: the leading padding columns are trimmed
            before = batch.columns
            batch.keep([1, 2])
            rows = rows[1:]
            assert batch.columns < before
            assert bool(batch.mask[:, 0].any())
    for prompt, want in enumerate(expected):
        for step, (a, b) in enumerate(zip(got[prompt], want, strict=False)):
            assert torch.allclose(a, b, atol=1e-5), (prompt, step)
    assert [len(g) for g in got] == [6, 7, 6]
