import asyncio

import numpy as np
import pytest

from core.embedder import Embedder
from core.errors import InvalidRequestError
from retrievers.minilm_embedder import MiniLMEmbedder


def test_is_an_embedder_with_unit_norm_float32_vectors(embedder: MiniLMEmbedder):
    assert isinstance(embedder, Embedder)
    assert embedder.info.dimensions == 384
    assert embedder.info.max_input_tokens == 256
    vectors = embedder.embed_batch(["a cat sat on the mat", "stock prices fell", "x" * 5000])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_texts_are_closer(embedder: MiniLMEmbedder):
    cat, kitten, market = embedder.embed_batch(["a cat", "a small kitten", "the bond market"])
    assert float(cat @ kitten) > float(cat @ market) + 0.2


def test_bulk_order_is_kept_despite_length_sorting(embedder: MiniLMEmbedder):
    texts = ["short", "a much longer sentence about volcanoes and lava flows", "medium text here"]
    together = embedder.embed_batch(texts)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(together[i], embedder.embed_batch([text])[0], atol=1e-5)


async def test_token_ids_give_the_same_vector_as_text(embedder: MiniLMEmbedder):
    ids = embedder.tokenize(["hello world"])[0]
    from_text = await embedder.embed(["hello world"])
    from_ids = await embedder.embed([ids[1:-1]])  # without [CLS]/[SEP]: they are added
    from_full_ids = await embedder.embed([ids])
    np.testing.assert_allclose(from_text.vectors, from_ids.vectors, atol=1e-6)
    np.testing.assert_allclose(from_text.vectors, from_full_ids.vectors, atol=1e-6)
    assert from_text.prompt_tokens == len(ids) == 4


async def test_concurrent_calls_are_micro_batched_and_match_bulk(embedder: MiniLMEmbedder):
    texts = [f"question number {i} about retrieval" for i in range(16)]
    before = embedder.forwards
    results = await asyncio.gather(*(embedder.embed([t]) for t in texts))
    forwards = embedder.forwards - before
    assert forwards < len(texts) / 2
    bulk = embedder.embed_batch(texts)
    np.testing.assert_allclose(np.vstack([r.vectors for r in results]), bulk, atol=1e-5)


async def test_bad_inputs_are_refused(embedder: MiniLMEmbedder):
    with pytest.raises(InvalidRequestError):
        await embedder.embed([])
    with pytest.raises(InvalidRequestError, match="vocabulary"):
        await embedder.embed([[1, 2, 10_000_000]])
    # the worker survives a refused request
    assert (await embedder.embed(["still alive"])).vectors.shape == (1, 384)
