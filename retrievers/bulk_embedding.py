"""An embedder's bulk (ingestion) path: length-bucketed batches cut by a padded-token budget, the
transformer in the bulk dtype, and parallel workers on one torch thread each, resumable from a
``BatchCheckpoint``."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from core.embedder import TokenProgress
from retrievers.bulk_attention import use_rows_attention
from retrievers.bulk_linear import use_product_then_bias
from retrievers.bulk_precision import BulkPlan, cpu_has_amx
from retrievers.embedding_checkpoint import BatchCheckpoint
from retrievers.settings import RetrieverSettings

logger = logging.getLogger(__name__)

TokenIds = list[int]
Forward = Callable[[Sequence[TokenIds]], npt.NDArray[np.float32]]


class BulkTransformer:
    """A model's transformer in the bulk dtype (a copy made on first use); pooling and normalization
    in fp32."""

    def __init__(self, model: Any, plan: BulkPlan) -> None:
        self._model = model
        self._plan = plan
        self._transformer: Any = None

    def _module(self) -> Any:
        if self._transformer is None:
            import copy

            import torch

            dtype = torch.bfloat16 if self._plan.dtype == "bfloat16" else torch.float32
            module = copy.deepcopy(self._model[0]).to(device=self._plan.device, dtype=dtype)
            if self._plan.device == "cpu" and dtype == torch.bfloat16 and not cpu_has_amx():
                # Measured faster than torch's own kernels on AVX512-BF16 (see each module); with AMX
                # untested, so torch's kernels stay there.
                use_rows_attention(module)
                use_product_then_bias(module)
            self._transformer = module.eval()
        return self._transformer

    def __call__(self, feed: dict[str, npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
        import torch

        transformer = self._module()
        device = self._plan.device
        features: dict[str, Any] = {name: torch.from_numpy(value).to(device) for name, value in feed.items()}
        with torch.inference_mode():
            out = transformer(features)
            out["token_embeddings"] = out["token_embeddings"].float()
            for module in list(self._model)[1:]:  # pooling (and Normalize): no weights
                out = module(out)
            vectors = out["sentence_embedding"].float().cpu().numpy()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def bulk_batches(rows: Sequence[TokenIds], settings: RetrieverSettings, fp32_cpu: bool) -> list[list[int]]:
    """Row indices per batch: longest first (the first batches are the slowest, so the rate shown
    early is honest), cut by the padded-token budget. Deterministic for the same rows and settings."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    budget = settings.bulk_batch_tokens
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        width = len(rows[order[start]])
        size = settings.ingest_batch_size if fp32_cpu else max(1, budget // max(width, 1))
        batches.append(order[start : start + size])
        start += size
    return batches


def bulk_workers(plan: BulkPlan, settings: RetrieverSettings, fp32_cpu: bool) -> int:
    if fp32_cpu or plan.device != "cpu":
        return 1  # ONNX Runtime / CUDA: one batch at a time
    return settings.bulk_workers or settings.torch_threads or os.cpu_count() or 1


def _run_batches(
    forward: Forward,
    rows: Sequence[TokenIds],
    pending: Sequence[tuple[int, list[int]]],
    max_workers: int,
) -> Generator[npt.NDArray[np.float32]]:
    """The vectors of ``pending`` batches, in order; several at a time on one torch thread each."""
    workers = min(max_workers, len(pending))
    if workers <= 1:
        for _, batch in pending:
            yield forward([rows[i] for i in batch])
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="bulk-embed")
    try:
        with _one_torch_thread():
            yield from pool.map(lambda item: forward([rows[i] for i in item[1]]), pending)
    finally:
        # An interrupt waits for the batches running now only, not for the queued ones.
        pool.shutdown(wait=True, cancel_futures=True)


def embed_batches(
    rows: Sequence[TokenIds],
    dimensions: int,
    forward: Forward,
    batches: Sequence[list[int]],
    workers: int,
    progress: TokenProgress | None = None,
    checkpoint: BatchCheckpoint | None = None,
) -> npt.NDArray[np.float32]:
    """The vectors of ``rows`` in their original order, ``batches`` at a time on up to ``workers``.

    With a ``checkpoint``, batches finished by an earlier, interrupted run are loaded instead of
    embedded, and each batch embedded now is saved as soon as it is done.
    """
    out = np.zeros((len(rows), dimensions), dtype=np.float32)
    total = sum(len(r) for r in rows)
    done = 0
    pending: list[tuple[int, list[int]]] = []
    for index, batch in enumerate(batches):
        saved = checkpoint.load(index, len(batch), dimensions) if checkpoint else None
        if saved is None:
            pending.append((index, batch))
            continue
        out[batch] = saved
        done += sum(len(rows[i]) for i in batch)
    if checkpoint is not None and checkpoint.reused:
        logger.info("resuming: %d embedding batches (%d tokens) were done before", checkpoint.reused, done)
        if progress:
            progress(done, total)
    vectors_of = _run_batches(forward, rows, pending, workers)
    with closing(vectors_of):  # stops the workers at once when this loop is left by an exception
        for (index, batch), vectors in zip(pending, vectors_of, strict=True):
            out[batch] = vectors
            if checkpoint is not None:
                checkpoint.save(index, vectors)
            done += sum(len(rows[i]) for i in batch)
            if progress:
                progress(done, total)
    return out


_threads_lock = threading.Lock()
_threads_held = {"builds": 0, "saved": 0}


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch's thread count is process-wide: it is 1 while any bulk build runs in parallel workers, and
    what it was before once the last of them ends (builds may overlap, e.g. two vector-store jobs)."""
    import torch

    with _threads_lock:
        if _threads_held["builds"] == 0:
            _threads_held["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_held["builds"] += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_held["builds"] -= 1
            if _threads_held["builds"] == 0:
                torch.set_num_threads(_threads_held["saved"])
