"""The Engine protocol over a Hugging Face safetensors folder, with continuous batching on CPU.

torch and transformers are imported in ``start``, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.errors import EngineUnavailableError
from serving.request_tokens import new_token_budget, refuse_json_schema, request_prompt_ids
from serving.settings import ServingSettings

if TYPE_CHECKING:
    from serving.batch_scheduler import BatchScheduler, SchedulerStats, SequenceEvent

logger = logging.getLogger(__name__)

PEFT_PROBE_WARNING = "`is_gradient_checkpointing` is deprecated"


class TransformersEngine:
    """Serves one model folder on CPU; one background thread decodes all active requests together."""

    def __init__(
        self,
        model_id: str,
        model_path: Path,
        settings: ServingSettings | None = None,
        *,
        digest: str | None = None,
        adapter_path: Path | None = None,
    ) -> None:
        self._model_id = model_id
        self._model_path = model_path
        self._adapter_path = adapter_path  # a PEFT LoRA folder merged into this engine's weights
        self._settings = settings or ServingSettings()
        self._digest = digest
        self._created = int(time.time())
        self._context_length = self._settings.max_context_length or self._read_context_length()
        self._tokenizer: Any = None
        self._vocab_size: int | None = None
        self._scheduler: BatchScheduler | None = None
        self._eos: frozenset[int] = frozenset()
        self._start_lock = asyncio.Lock()

    def _read_context_length(self) -> int:
        import json

        try:
            config = json.loads((self._model_path / "config.json").read_text())
        except (OSError, ValueError):
            return 0  # known after start()
        return int(config.get("max_position_embeddings") or 0)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self._model_id,
            context_length=self._context_length,
            created=self._created,
            digest=self._digest,
            engine="transformers",
            metadata={"engine": "transformers", "adapter": self._adapter_path is not None},
        )

    @property
    def stats(self) -> SchedulerStats:
        if self._scheduler is None:
            raise EngineUnavailableError(f"model {self._model_id} is not loaded yet")
        return self._scheduler.stats

    @property
    def active_requests(self) -> int:
        """Requests in the batch or waiting; a closed or cancelled stream leaves at the next step."""
        stats = self._scheduler.stats if self._scheduler is not None else None
        return 0 if stats is None else stats.active + stats.waiting

    def failure(self) -> str | None:
        scheduler = self._scheduler
        if scheduler is not None and not scheduler.alive():
            return f"the batch scheduler of {self._model_id} stopped"
        return None

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            raise EngineUnavailableError(f"model {self._model_id} is not loaded yet")
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    async def start(self) -> None:
        async with self._start_lock:
            if self._scheduler is not None:
                return
            self._scheduler = await asyncio.to_thread(self._load)
            self._scheduler.start()
            logger.info("loaded %s from %s", self._model_id, self._model_path)

    def _load(self) -> BatchScheduler:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        from serving.batch_scheduler import BatchScheduler

        settings = self._settings
        if settings.torch_threads is not None:
            torch.set_num_threads(settings.torch_threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self._model_path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                self._model_path, dtype=getattr(torch, settings.dtype), local_files_only=True
            )
        except OSError as exc:
            raise EngineUnavailableError(
                f"cannot load model {self._model_id} from {self._model_path}"
            ) from exc
        if self._adapter_path is not None:
            model = self._merge_adapter(model, self._adapter_path)
        model.to(settings.device)  # type: ignore[arg-type]  # transformers' decorated .to() is mistyped
        model.eval()
        eos: set[int] = set()
        try:
            generation = GenerationConfig.from_pretrained(self._model_path, local_files_only=True)
            configured = generation.eos_token_id
            if isinstance(configured, list):
                eos.update(configured)
            elif configured is not None:
                eos.add(configured)
        except OSError:
            pass  # no generation_config.json: the tokenizer's EOS alone
        if tokenizer.eos_token_id is not None:
            eos.add(int(tokenizer.eos_token_id))
        self._tokenizer = tokenizer
        self._vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self._eos = frozenset(eos)
        limit = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        self._context_length = (
            min(settings.max_context_length or limit, limit) if limit else self._context_length
        )
        return BatchScheduler(
            model,
            self._eos,
            max_batch_size=settings.max_batch_size,
            max_prefills_per_step=settings.max_prefills_per_step,
            max_prefill_tokens=settings.max_prefill_tokens_per_step,
        )

    def _merge_adapter(self, model: Any, adapter_path: Path) -> Any:
        """The base weights with the LoRA deltas folded in.

        Merging (rather than PEFT's multi-adapter switching) keeps every row of a continuous batch on the
        same weights, so batching stays correct; the price is one weight copy per served adapter, which
        suits the small CPU models this engine is for. Multi-LoRA on one base is vLLM's job.
        """
        import warnings

        from peft import PeftModel

        try:
            with warnings.catch_warnings():
                # PEFT probes a property that transformers 5 deprecated; nothing for us to change.
                warnings.filterwarnings("ignore", PEFT_PROBE_WARNING, FutureWarning)
                peft_model = PeftModel.from_pretrained(model, adapter_path, is_trainable=False)
        except (OSError, ValueError, KeyError) as exc:
            raise EngineUnavailableError(
                f"cannot apply adapter {adapter_path} to model {self._model_id}: {exc}"
            ) from exc
        return peft_model.merge_and_unload()

    async def aclose(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            await asyncio.to_thread(scheduler.stop)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        from serving.batch_scheduler import Sequence, asyncio_emitter
        from serving.detokenizer import IncrementalDetokenizer
        from serving.sampling import TokenSampler
        from serving.stop_matcher import StopMatcher

        scheduler = self._scheduler
        if scheduler is None:
            raise EngineUnavailableError(f"model {self._model_id} is not loaded yet")
        refuse_json_schema(request, "transformers")
        prompt_ids = await request_prompt_ids(self._tokenizer, request, self._context_length)
        prompt_tokens = len(prompt_ids)
        max_new = new_token_budget(request, prompt_tokens, self._context_length)
        events: asyncio.Queue[SequenceEvent] = asyncio.Queue()
        sequence = Sequence(
            prompt_ids=prompt_ids,
            max_new_tokens=max_new,
            sampler=TokenSampler(request.params, self._vocab_size),
            detokenizer=IncrementalDetokenizer(self._tokenizer, prompt_ids),
            stopper=StopMatcher(request.params.stop),
            emit=asyncio_emitter(asyncio.get_running_loop(), events),
        )
        scheduler.submit(sequence)
        finished = False
        try:
            while not finished:
                event = await events.get()
                if event.error is not None:
                    finished = True
                    raise event.error
                finished = event.finish_reason is not None
                yield GenerationChunk(
                    text=event.text,
                    finish_reason=event.finish_reason,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=event.completion_tokens,
                )
        finally:
            if not finished:  # the consumer went away (aclose, cancellation): free the batch slot
                scheduler.cancel(sequence)
