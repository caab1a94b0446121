"""all-MiniLM-L6-v2 (sentence-transformers) from a local folder, with micro-batched ``embed()``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from core.embedder import EmbedderInfo, EmbeddingInput, EmbeddingMethod, Embeddings, TokenProgress
from core.errors import EngineError, InvalidRequestError
from retrievers import onnx_forward
from retrievers.bulk_embedding import BulkTransformer, TokenIds, bulk_batches, bulk_workers, embed_batches
from retrievers.bulk_precision import BulkPlan, choose_bulk_plan
from retrievers.embedding_checkpoint import BatchCheckpoint
from retrievers.micro_batcher import MicroBatcher
from retrievers.settings import RetrieverSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


class MiniLMEmbedder:
    """Unit-norm float32 vectors; texts and token ids of its own tokenizer share one forward path."""

    def __init__(
        self,
        model_id: str,
        folder: Path,
        settings: RetrieverSettings | None = None,
        *,
        digest: str | None = None,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.settings = settings or RetrieverSettings()
        torch.set_num_threads(self.settings.torch_threads or os.cpu_count() or 1)
        try:
            self._model: SentenceTransformer = SentenceTransformer(
                str(folder), device="cpu", local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot load embedder {model_id!r} from {folder}: {exc}") from exc
        self._model.eval()
        tokenizer: Any = self._model.tokenizer
        self._tokenizer = tokenizer
        self._max_tokens = int(self._model.max_seq_length or tokenizer.model_max_length)
        self._vocab_size = int(tokenizer.vocab_size)
        self._cls = int(tokenizer.cls_token_id)
        self._sep = int(tokenizer.sep_token_id)
        self._pad = int(tokenizer.pad_token_id)
        dimensions = (
            self._model.get_embedding_dimension()
            if hasattr(self._model, "get_embedding_dimension")
            else self._model.get_sentence_embedding_dimension()
        )
        self._info = EmbedderInfo(
            id=model_id, dimensions=int(dimensions or 0), max_input_tokens=self._max_tokens, digest=digest
        )
        self._onnx = self._open_onnx(folder, digest)
        self._bulk_plan: BulkPlan = choose_bulk_plan(self.settings.bulk_dtype)
        self._bulk_transformer = BulkTransformer(self._model, self._bulk_plan)
        self._batcher: MicroBatcher[TokenIds, npt.NDArray[np.float32]] = MicroBatcher(
            self._forward_rows,
            max_items=self.settings.max_batch_size,
            max_wait_s=self.settings.max_batch_wait_ms / 1000.0,
            max_tokens=self.settings.max_batch_tokens,
            size=len,
        )

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    @property
    def forwards(self) -> int:
        """Forward passes run by the micro-batcher so far."""
        return self._batcher.batches

    @property
    def items_run(self) -> int:
        """Inputs the micro-batcher's forwards have embedded so far."""
        return self._batcher.items_run

    @property
    def runtime(self) -> str:
        """Which runtime runs the forwards: "onnx" or "torch"."""
        return "onnx" if self._onnx is not None else "torch"

    def _open_onnx(self, folder: Path, digest: str | None) -> onnx_forward.OnnxForward | None:
        choice = self.settings.embedder_runtime
        if choice == "torch":
            return None
        if not onnx_forward.onnx_available():
            if choice == "onnx":
                raise EngineError("embedder_runtime is 'onnx' but onnx/onnxruntime are not installed")
            logger.info("onnxruntime is not installed: the embedder runs with PyTorch")
            return None
        key = (digest or _folder_digest(folder)).removeprefix("sha256:")[:32]
        target = self.settings.work_dir / "onnx" / f"{key}-opset{onnx_forward.OPSET}.onnx"
        probe = onnx_forward.probe_batch(self._vocab_size, self._cls, self._sep, self._pad)
        threads = self.settings.torch_threads or os.cpu_count() or 1
        forward = onnx_forward.load_or_export(self._model, target, threads, probe, self._torch_forward(probe))
        if forward is None and choice == "onnx":
            raise EngineError(f"cannot run embedder {self._info.id!r} with ONNX Runtime (see the log)")
        return forward

    # --- tokens ----------------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        if not texts:
            return []
        encoded = self._tokenizer(list(texts), truncation=True, max_length=self._max_tokens)
        return [list(ids) for ids in encoded["input_ids"]]

    def _wrap_ids(self, ids: Sequence[int]) -> TokenIds:
        bad = [i for i in ids if not isinstance(i, int) or i < 0 or i >= self._vocab_size]
        if bad:
            raise InvalidRequestError(
                f"token id {bad[0]!r} is outside the embedder's vocabulary (0..{self._vocab_size - 1})",
                param="input",
            )
        body = list(ids)
        if body and body[0] == self._cls:
            body = body[1:]
        if body and body[-1] == self._sep:
            body = body[:-1]
        return [self._cls, *body[: self._max_tokens - 2], self._sep]

    def to_ids(self, inputs: Sequence[EmbeddingInput]) -> list[TokenIds]:
        texts = [(i, x) for i, x in enumerate(inputs) if isinstance(x, str)]
        rows: list[TokenIds] = [[] for _ in inputs]
        for (i, _), ids in zip(texts, self.tokenize([t for _, t in texts]), strict=True):
            rows[i] = ids
        for i, x in enumerate(inputs):
            if not isinstance(x, str):
                rows[i] = self._wrap_ids(x)
        return rows

    # --- forward ---------------------------------------------------------------------------------

    def _feed(self, rows: Sequence[TokenIds]) -> dict[str, npt.NDArray[np.int64]]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = row
            mask[n, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def _torch_forward(self, feed: dict[str, npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
        import torch

        features = {name: torch.from_numpy(value) for name, value in feed.items()}
        with torch.inference_mode():
            out = self._model(features)["sentence_embedding"]
        return np.asarray(out.float().numpy(), dtype=np.float32)

    def _forward(self, rows: Sequence[TokenIds]) -> npt.NDArray[np.float32]:
        feed = self._feed(rows)
        short = feed["input_ids"].shape[1] <= self.settings.onnx_max_tokens
        vectors = self._onnx(feed) if self._onnx is not None and short else self._torch_forward(feed)
        # The model's Normalize module already does this; keep the contract even if a folder lacks it.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)

    def _forward_rows(self, rows: list[TokenIds]) -> list[npt.NDArray[np.float32]]:
        # Sorting by length inside a micro-batch cuts padding when requests differ in length.
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        vectors = self._forward([rows[i] for i in order])
        result: list[npt.NDArray[np.float32]] = [vectors[0]] * len(rows)
        for position, i in enumerate(order):
            result[i] = vectors[position]
        return result

    def embed_ids(self, rows: Sequence[TokenIds], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        """Bulk: sorted by length so each batch pads little, ``batch_size`` rows per forward."""
        size = batch_size or self.settings.ingest_batch_size
        out = np.zeros((len(rows), self._info.dimensions), dtype=np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            out[chunk] = self._forward([rows[i] for i in chunk])
        return out

    # --- bulk (ingestion): the BulkEmbedder protocol ------------------------------------------------

    @property
    def bulk_method(self) -> EmbeddingMethod:
        plan = self._bulk_plan
        if plan.device == "cpu" and plan.dtype == "float32":
            # The fp32 bulk path is embed_ids: ONNX Runtime for short batches, PyTorch for long ones.
            return EmbeddingMethod("float32", "onnxruntime+torch-cpu" if self._onnx else "torch-cpu")
        return EmbeddingMethod(plan.dtype, plan.runtime)

    def _bulk_forward(self, rows: Sequence[TokenIds]) -> npt.NDArray[np.float32]:
        """The transformer in the bulk dtype; pooling and normalization in fp32."""
        return self._bulk_transformer(self._feed(rows))

    def bulk_key(self) -> dict[str, Any]:
        """What decides the bulk batches and their vectors besides the texts (a resumed build's key)."""
        import torch

        settings = self.settings
        parallel = bulk_workers(self._bulk_plan, settings, fp32_cpu=False) > 1
        return {
            "embedder": self._info.digest or self._info.id,
            "method": self.bulk_method.as_spec(),
            "device": self._bulk_plan.device,
            "bulk_batch_tokens": settings.bulk_batch_tokens,
            # bf16 results can differ in the last bits between 1 and n intra-op threads (not between workers).
            "bulk_threads": 1 if parallel else torch.get_num_threads(),
            "ingest_batch_size": settings.ingest_batch_size,
            "onnx_max_tokens": settings.onnx_max_tokens,
            "max_tokens": self._max_tokens,
            "torch": torch.__version__,
        }

    def embed_bulk(
        self,
        texts: Sequence[str],
        progress: TokenProgress | None = None,
        checkpoint: BatchCheckpoint | None = None,
    ) -> npt.NDArray[np.float32]:
        """Ingestion: length-bucketed batches (sorted by tokens, cut by padded tokens), original order.

        Runs in the bulk dtype (``RetrieverSettings.bulk_dtype``); vectors are float32, unit norm.
        With a ``checkpoint``, batches finished by an earlier, interrupted run are loaded instead of
        embedded, and each batch embedded now is saved as soon as it is done.
        """
        if not texts:
            return np.zeros((0, self._info.dimensions), dtype=np.float32)
        rows = self.tokenize(texts)
        fp32_cpu = self._bulk_plan.device == "cpu" and self._bulk_plan.dtype == "float32"
        forward = self._forward if fp32_cpu else self._bulk_forward
        batches = bulk_batches(rows, self.settings, fp32_cpu)
        workers = bulk_workers(self._bulk_plan, self.settings, fp32_cpu)
        return embed_batches(rows, self._info.dimensions, forward, batches, workers, progress, checkpoint)

    # --- the Embedder protocol --------------------------------------------------------------------

    async def embed(self, inputs: Sequence[EmbeddingInput]) -> Embeddings:
        if not inputs:
            raise InvalidRequestError("input must not be empty", param="input")
        # A large request is tokenized off the event loop (the fast tokenizer releases the GIL).
        rows = self.to_ids(inputs) if len(inputs) <= 16 else await asyncio.to_thread(self.to_ids, inputs)
        tokens = sum(len(r) for r in rows)
        limit = self.settings.max_request_tokens
        if tokens > limit:
            raise InvalidRequestError(
                f"The input has {tokens} tokens; one request may have at most {limit}. "
                "Split the inputs over several requests.",
                param="input",
                code="too_many_tokens",
            )
        vectors = await self._batcher.submit(rows)
        return Embeddings(vectors=np.stack(vectors), prompt_tokens=tokens)

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._info.dimensions), dtype=np.float32)
        return self.embed_ids(self.tokenize(texts))

    def close(self) -> None:
        self._batcher.close()
        # Free the ONNX Runtime session (and its threads) now, not during interpreter shutdown.
        self._onnx = None


def _folder_digest(folder: Path) -> str:
    """Content key of a model folder without a hub digest (weights and configuration files)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        with path.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
