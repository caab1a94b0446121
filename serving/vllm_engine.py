"""The Engine protocol over vLLM's in-process async engine (GPU path, optional extra ``.[gpu]``).

vLLM is never imported at module import time: it lives in its own environment on GPU nodes. Everything
that does not need vLLM itself (parameter mapping, output conversion) is plain code tested on CPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.chat import FinishReason, GenerationChunk, GenerationRequest, ModelInfo, SamplingParams
from core.errors import ContextLengthExceededError, EngineError, EngineUnavailableError, InvalidRequestError
from serving.chat_messages import template_messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VllmOptions:
    """Engine arguments passed to vLLM's ``AsyncEngineArgs``; defaults suit one GPU per replica."""

    gpu_memory_utilization: float = 0.85
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    enable_lora: bool = False
    max_loras: int = 4
    max_lora_rank: int = 64
    enforce_eager: bool = False


def sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Our sampling settings as ``vllm.SamplingParams`` keyword arguments (delta outputs)."""
    kwargs: dict[str, Any] = {
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "seed": params.seed,
        "stop": list(params.stop),
        "max_tokens": params.max_tokens,
    }
    return kwargs


def to_chunk(output: Any, prompt_tokens: int, completion_tokens: int) -> GenerationChunk:
    """One vLLM ``RequestOutput`` (DELTA kind) as our chunk; counts are cumulative."""
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


class VllmEngine:
    """Serves one model folder (a hub model artifact's local path) with ``vllm.v1`` ``AsyncLLM``."""

    def __init__(
        self,
        model_id: str,
        model_path: Path,
        *,
        options: VllmOptions | None = None,
        digest: str | None = None,
        adapters: Mapping[str, Path] | None = None,
    ) -> None:
        self._model_id = model_id
        self._model_path = model_path
        self._options = options or VllmOptions()
        self._digest = digest
        self._adapters = dict(adapters or {})
        self._engine: Any = None
        self._tokenizer: Any = None
        self._context_length = self._options.max_model_len or 0
        self._created = int(time.time())

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self._model_id,
            context_length=self._context_length,
            created=self._created,
            digest=self._digest,
            metadata={"engine": "vllm"},
        )

    async def start(self) -> None:
        if self._engine is not None:
            return
        try:
            from vllm import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:  # the optional extra is missing
            raise EngineUnavailableError("vLLM is not installed: install aihub[gpu] on a GPU node") from exc
        opts = self._options
        args = AsyncEngineArgs(
            model=str(self._model_path),
            tokenizer=str(self._model_path),
            served_model_name=self._model_id,
            gpu_memory_utilization=opts.gpu_memory_utilization,
            max_model_len=opts.max_model_len,
            tensor_parallel_size=opts.tensor_parallel_size,
            dtype=opts.dtype,
            enable_lora=opts.enable_lora or bool(self._adapters),
            max_loras=opts.max_loras,
            max_lora_rank=opts.max_lora_rank,
            enforce_eager=opts.enforce_eager,
        )
        self._engine = AsyncLLM.from_engine_args(args)
        self._tokenizer = await self._engine.get_tokenizer()
        self._context_length = int(self._engine.model_config.max_model_len)

    async def aclose(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            ids = self._tokenizer.apply_chat_template(
                template_messages(request.messages, knows_developer=False),
                tools=list(request.tools) or None,
                add_generation_prompt=True,
                tokenize=True,
            )
            return list(ids)
        if request.prompt is None:
            raise InvalidRequestError("a generation needs messages or a prompt", param="messages")
        return list(self._tokenizer.encode(request.prompt))

    def _lora_request(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        if adapter not in self._adapters:
            raise InvalidRequestError(f"adapter {adapter!r} is not loaded on {self._model_id}", param="model")
        from vllm.lora.request import LoRARequest

        index = sorted(self._adapters).index(adapter) + 1  # vLLM wants positive integer ids
        return LoRARequest(adapter, index, str(self._adapters[adapter]))

    async def generate(
        self, request: GenerationRequest, adapter: str | None = None
    ) -> AsyncIterator[GenerationChunk]:
        if self._engine is None:
            raise EngineUnavailableError(f"model {self._model_id} is not loaded yet")
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        prompt_ids = self._prompt_ids(request)
        prompt_tokens = len(prompt_ids)
        limit = self._context_length
        wanted = request.params.max_tokens
        if prompt_tokens >= limit or (wanted is not None and prompt_tokens + wanted > limit):
            raise ContextLengthExceededError(
                f"this model's maximum context length is {limit} tokens; the prompt has {prompt_tokens} "
                f"tokens and {wanted or 0} more were requested",
                param="messages" if request.messages is not None else "prompt",
            )
        kwargs = sampling_kwargs(request.params)
        if kwargs["max_tokens"] is None:
            kwargs["max_tokens"] = limit - prompt_tokens
        sampling = VllmSamplingParams(**kwargs, output_kind=RequestOutputKind.DELTA)
        stream = self._engine.generate(
            TokensPrompt(prompt_token_ids=prompt_ids),
            sampling,
            request.request_id,
            lora_request=self._lora_request(adapter),
        )
        completion_tokens = 0
        finished = False
        try:
            async for output in stream:
                completion_tokens += len(output.outputs[0].token_ids)
                chunk = to_chunk(output, prompt_tokens, completion_tokens)
                finished = chunk.finish_reason is not None
                yield chunk
        except Exception as exc:  # vLLM's own errors, mapped at this edge
            if type(exc).__name__ == "EngineDeadError":
                raise EngineUnavailableError(f"the vLLM engine of {self._model_id} died") from exc
            raise EngineError(f"vLLM failed on request {request.request_id}") from exc
        finally:
            if not finished:  # the consumer went away: free the sequence's KV cache now
                await self._engine.abort(request.request_id)
