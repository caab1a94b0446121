"""Continuous batching on one background thread.

The thread owns the model and the running batch. At every step boundary it drops cancelled sequences,
admits waiting ones into free slots, spends the step's prefill budget, and runs one batched decode
forward for all running rows. Each sequence's text reaches its asyncio consumer through
``loop.call_soon_threadsafe`` into the request's own queue.

Chunked prefill: a prompt is prefilled alone, into its own cache, at most ``max_prefill_tokens`` tokens
per step (over all prompts), then merged into the batch with its first token. A long prompt thus
takes several steps, with a decode step of the running rows between any two of its chunks, and the
budget goes to the prompts with the fewest tokens left first: a short request is never queued behind
a long prompt's prefill, and running streams never stall for a whole one.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from core.chat import FinishReason
from core.errors import AihubError, EngineError, EngineUnavailableError
from serving.detokenizer import IncrementalDetokenizer
from serving.kv_batch import KVBatch, cache_keyword
from serving.prefill import Prefill
from serving.sampling import TokenSampler
from serving.stop_matcher import StopMatcher

logger = logging.getLogger(__name__)

_running: weakref.WeakSet[BatchScheduler] = weakref.WeakSet()


@atexit.register
def _stop_running_schedulers() -> None:
    """Stop scheduler threads that nobody stopped, before the interpreter finalizes.

    A daemon thread that returns from a torch forward after finalization has begun is ended by CPython
    with ``pthread_exit``; its forced unwind through torch's C++ frames calls ``std::terminate``, so a
    process that exited with an engine still generating aborted ("terminate called without an active
    exception"; python/cpython#87135, pytorch/pytorch#38228). atexit hooks run before finalization.
    """
    for scheduler in list(_running):
        scheduler.stop()


@dataclass(frozen=True, slots=True)
class SequenceEvent:
    """What the scheduler tells one request: new text, and at the end a finish reason or an error."""

    text: str
    completion_tokens: int
    finish_reason: FinishReason | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class Sequence:
    """One request inside the scheduler; ``emit`` is called on the scheduler thread."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampler: TokenSampler
    detokenizer: IncrementalDetokenizer
    stopper: StopMatcher
    emit: Callable[[SequenceEvent], None]
    completion_tokens: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class SchedulerStats:
    """Counters for tests and metrics (read from other threads; ints are updated atomically enough)."""

    steps: int = 0
    batched_steps: int = 0  # decode steps that ran more than one sequence
    max_batch_size_seen: int = 0
    prefills: int = 0  # prompts fully prefilled
    prefill_chunks: int = 0  # prefill forwards (a prompt longer than the step budget takes several)
    active: int = 0  # in the batch or being prefilled (holding a slot)
    waiting: int = 0


def asyncio_emitter(
    loop: asyncio.AbstractEventLoop, sink: asyncio.Queue[SequenceEvent]
) -> Callable[[SequenceEvent], None]:
    def emit(event: SequenceEvent) -> None:
        loop.call_soon_threadsafe(sink.put_nowait, event)

    return emit


class BatchScheduler:
    def __init__(
        self,
        model: Any,
        eos_token_ids: frozenset[int],
        *,
        max_batch_size: int,
        max_prefills_per_step: int,
        max_prefill_tokens: int | None = None,
    ) -> None:
        self._model = model
        self._eos = eos_token_ids
        self._max_batch_size = max_batch_size
        self._max_prefills = max_prefills_per_step
        self._max_prefill_tokens = max_prefill_tokens  # per step; None: whole prompts
        self._inbox: queue.SimpleQueue[Sequence | None] = queue.SimpleQueue()
        self._waiting: list[Sequence] = []
        self._prefilling: list[Prefill] = []  # admitted (holding a slot), prompt not fully prefilled
        self._rows: list[Sequence] = []  # aligned with the batch's rows
        self._cache_keyword = cache_keyword(model)
        self._batch = KVBatch(model.config, self._cache_keyword)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.stats = SchedulerStats()

    def start(self) -> None:
        # A daemon, so that a forgotten engine never blocks exit; stopped at exit all the same (see above)
        self._thread = threading.Thread(target=self._run, name="aihub-batch-scheduler", daemon=True)
        self._thread.start()
        _running.add(self)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping = True
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        _running.discard(self)

    def submit(self, sequence: Sequence) -> None:
        self._inbox.put(sequence)

    def cancel(self, sequence: Sequence) -> None:
        """Ask the thread to drop the sequence at the next step boundary."""
        sequence.cancelled.set()
        self._inbox.put(None)  # wakes an idle thread; harmless otherwise

    # --- the scheduler thread --------------------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._stopping:
                try:
                    self._admit()
                    self._prefill_step()
                    if self._rows:
                        self._decode_step()
                except Exception as exc:  # a broken model: fail every request instead of hanging them
                    logger.exception("the batch scheduler failed")
                    self._fail_all(EngineError(f"generation failed: {exc}"))
        while True:  # requests that arrived during shutdown get an answer too
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._waiting.append(item)
        self._fail_all(EngineUnavailableError("the engine was shut down"))

    def _admit(self) -> None:
        block = not self._rows and not self._waiting and not self._prefilling
        while True:
            try:
                item = self._inbox.get(block=block)
            except queue.Empty:
                break
            block = False
            if item is not None:
                self._waiting.append(item)
        self._drop_cancelled()
        while self._waiting and len(self._rows) + len(self._prefilling) < self._max_batch_size:
            seq = self._waiting.pop(0)
            self._prefilling.append(Prefill(seq, self._batch.new_cache()))
        self._update_counts()

    def _prefill_step(self) -> None:
        """Spends this step's prefill budget, fewest tokens left first (ties: arrival order)."""
        budget = self._max_prefill_tokens
        for forwards, prefill in enumerate(sorted(self._prefilling, key=lambda p: p.left)):
            if forwards >= self._max_prefills or budget == 0:
                break
            size = prefill.left if budget is None else min(prefill.left, budget)
            if budget is not None:
                budget -= size
            try:
                self._prefill_chunk(prefill, size)
            except Exception as exc:  # this prompt broke the model; the running batch is untouched
                logger.exception("prefill failed")
                self._prefilling.remove(prefill)
                self._send(prefill.seq, SequenceEvent("", 0, error=EngineError(f"prefill failed: {exc}")))
        self._update_counts()

    def _drop_cancelled(self) -> None:
        self._waiting = [seq for seq in self._waiting if not seq.cancelled.is_set()]
        self._prefilling = [p for p in self._prefilling if not p.seq.cancelled.is_set()]
        keep = [row for row, seq in enumerate(self._rows) if not seq.cancelled.is_set()]
        if len(keep) != len(self._rows):
            self._keep_rows(keep)

    def _keep_rows(self, keep: list[int]) -> None:
        self._batch.keep(keep)
        self._rows = [self._rows[row] for row in keep]
        self._update_counts()

    def _update_counts(self) -> None:
        self.stats.active = len(self._rows) + len(self._prefilling)
        self.stats.waiting = len(self._waiting)

    def _prefill_chunk(self, prefill: Prefill, size: int) -> None:
        """Prefills the prompt's next ``size`` tokens; after its last chunk, samples the first token and
        moves the sequence into the batch (unless that token already ends it)."""
        seq, start = prefill.seq, prefill.done
        output = self._model(
            input_ids=torch.tensor([seq.prompt_ids[start : start + size]], dtype=torch.long),
            position_ids=torch.arange(start, start + size, dtype=torch.long).unsqueeze(0),
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_keyword: prefill.cache},
        )
        self.stats.prefill_chunks += 1
        prefill.done += size
        if prefill.left:
            return
        self.stats.prefills += 1
        token = seq.sampler.sample(output.logits[0, -1])
        # Still counted as active (prefilling) while its first token reaches the client
        if not self._advance(seq, token):
            self._batch.add(prefill.cache, prefill.done, token)
            self._rows.append(seq)
        self._prefilling.remove(prefill)
        self._update_counts()

    def _decode_step(self) -> None:
        size = len(self._rows)
        output = self._model(**self._batch.step_inputs())
        logits = output.logits[:, -1, :]
        self.stats.steps += 1
        self.stats.max_batch_size_seen = max(self.stats.max_batch_size_seen, size)
        if size > 1:
            self.stats.batched_steps += 1
        greedy = torch.argmax(logits, dim=-1).tolist()
        tokens = [
            greedy[row] if seq.sampler.plain_greedy else seq.sampler.sample(logits[row])
            for row, seq in enumerate(self._rows)
        ]
        self._batch.last_tokens = torch.tensor(tokens, dtype=torch.long)
        keep = [row for row, seq in enumerate(self._rows) if not self._advance(seq, tokens[row])]
        if len(keep) != size:
            self._keep_rows(keep)

    def _advance(self, seq: Sequence, token: int) -> bool:
        """Account one generated token; emit its text. True when the sequence is finished."""
        if seq.cancelled.is_set():
            return True
        seq.completion_tokens += 1
        if token in self._eos:
            text, stopped = self._drain(seq)
            finish: FinishReason | None = "stop"
        else:
            text, stopped = seq.stopper.push(seq.detokenizer.push(token))
            finish = "stop" if stopped else None
            if finish is None and seq.completion_tokens >= seq.max_new_tokens:
                rest, stopped = self._drain(seq)
                text, finish = text + rest, "stop" if stopped else "length"
        if text or finish is not None:
            self._send(seq, SequenceEvent(text, seq.completion_tokens, finish))
        return finish is not None

    @staticmethod
    def _drain(seq: Sequence) -> tuple[str, bool]:
        """The text still held by the detokenizer and the stop matcher, at the end of a sequence."""
        text, stopped = seq.stopper.push(seq.detokenizer.flush())
        return (text, True) if stopped else (text + seq.stopper.flush(), False)

    def _send(self, seq: Sequence, event: SequenceEvent) -> None:
        try:
            seq.emit(event)
        except RuntimeError:  # the consumer's event loop is closed: nobody is listening any more
            seq.cancelled.set()

    def _fail_all(self, error: AihubError) -> None:
        for seq in [*self._rows, *(p.seq for p in self._prefilling), *self._waiting]:
            self._send(seq, SequenceEvent("", seq.completion_tokens, error=error))
        self._rows, self._waiting, self._prefilling = [], [], []
        self._batch.keep([])
        self._update_counts()
