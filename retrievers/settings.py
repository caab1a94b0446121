"""Settings of the retrievers package (embedders, index backends, ingestion)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrieverSettings(BaseSettings):
    """Read from ``AIHUB_RETRIEVERS_*`` and the config file's ``retrievers`` section."""

    model_config = SettingsConfigDict(env_prefix="AIHUB_RETRIEVERS_", frozen=True, extra="ignore")

    torch_threads: int = Field(default=0, ge=0)  # 0: one per CPU core
    # How embedder forwards run: "onnx" (ONNX Runtime on a one-time export, fastest on CPU), "torch",
    # or "auto" (ONNX Runtime when installed, else PyTorch).
    embedder_runtime: Literal["auto", "onnx", "torch"] = "auto"
    # Padded batches wider than this many tokens run on PyTorch even with ONNX Runtime: long bulk
    # batches were 5-15 % faster there on a 2-core AVX2 machine, short ones 2.5x slower.
    onnx_max_tokens: int = Field(default=128, gt=0)
    # Micro-batching of concurrent embed() calls: wait at most this long for more requests. 0 adds no
    # latency when idle; requests arriving while a forward runs are still batched into the next one.
    max_batch_wait_ms: float = Field(default=0.0, ge=0.0)
    max_batch_size: int = Field(default=64, gt=0)  # inputs per forward (serving)
    # Padded tokens per serving forward (inputs x the longest one): bounds how long one forward holds the
    # embedder, so a request with many long inputs shares it with others (retrievers.micro_batcher).
    max_batch_tokens: int = Field(default=4096, gt=0)
    # Tokens of all inputs of one embed() call (OpenAI's limit is 300,000); more is refused (400, "input").
    max_request_tokens: int = Field(default=300_000, gt=0)
    ingest_batch_size: int = Field(default=32, gt=0)  # inputs per forward (bulk embedding, fp32 path)
    # Bulk embedding (index builds): "auto" runs bf16 where the CPU has AMX-BF16 or AVX512-BF16 (and on
    # CUDA), fp32 elsewhere; "bf16" / "fp32" force it. Queries always run in fp32 (ONNX Runtime).
    bulk_dtype: Literal["auto", "bf16", "fp32"] = "auto"
    # Bulk batches are cut by padded tokens (inputs x the longest, after sorting by length). 4,096: two
    # workers' widest activations (4,096 x 1,536 bf16, 12.5 MB each) stay in a 32 MB L3; 1.1x 8,192 on
    # the AMD EPYC measured (SciFact hybrid build 63.5 / 69.0 s against 73.4 / 73.7 s).
    bulk_batch_tokens: int = Field(default=4096, gt=0)
    # CPU bulk batches run this many at a time, each on one torch thread (0: one per core, torch_threads
    # or the CPU count): no per-op barrier between cores, so a core taken by another process slows only
    # its own batch; 1.15-1.2x two threads on one batch on the 2-core box, and the vectors are the same.
    bulk_workers: int = Field(default=0, ge=0)
    # Where backends that need a writable copy (Qdrant local mode) keep it, one folder per index digest.
    work_dir: Path = Field(default_factory=lambda: Path.home() / ".aihub" / "cache" / "retrievers")
    qdrant_url: str | None = None  # a Qdrant server; local mode (on-disk, in process) when unset
    qdrant_api_key: str | None = None
    index_cache_size: int = Field(default=8, gt=0)  # opened retrievers kept, by digest
    # Vector stores made over the API (retrievers.ingest_worker): a gateway holds a store's job under a
    # lease it renews while building; one that stopped is replaced once its lease has run out.
    ingest_lease_s: float = Field(default=30.0, gt=0)
    ingest_poll_s: float = Field(default=1.0, gt=0)  # how often the worker looks for queued files
    ingest_files_per_build: int = Field(default=2000, gt=0)  # files one index version takes at most
    ingest_backend: Literal["faiss", "bm25", "hybrid"] = "hybrid"
    candidates: int = Field(default=100, gt=0)  # per-method candidates fused by hybrid search
