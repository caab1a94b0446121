"""Runs the items of concurrent requests in bounded batches on one worker thread, shared fairly.

Every forward takes at most ``max_items`` items and ``max_tokens`` padded tokens (items × the largest
item's size). Items are taken round-robin across the requests waiting, one from each in turn, so a
request with thousands of long inputs gets its share of every forward and no more: a one-text request
that arrives meanwhile rides in the next forward. A caller that stops waiting (cancelled: its client
left) has its remaining items dropped before the next forward.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(eq=False, slots=True)
class _Pending(Generic[ItemT, ResultT]):
    items: Sequence[ItemT]
    future: asyncio.Future[list[ResultT]]
    results: dict[int, ResultT] = field(default_factory=dict)
    taken: int = 0  # items handed to a forward so far

    @property
    def untaken(self) -> int:
        return len(self.items) - self.taken


class MicroBatcher(Generic[ItemT, ResultT]):
    """``await submit(items)`` returns ``run``'s results for those items, in order.

    ``run`` is blocking (a torch forward); it runs on one worker thread, so while a batch is being
    computed the next one collects. ``size`` gives an item's cost in tokens (for ``max_tokens``). One
    batcher serves one event loop at a time (re-bound if it changes).
    """

    def __init__(
        self,
        run: Callable[[list[ItemT]], list[ResultT]],
        *,
        max_items: int,
        max_wait_s: float,
        max_tokens: int | None = None,
        size: Callable[[ItemT], int] = lambda _: 1,
    ) -> None:
        self._run = run
        self._max_items = max_items
        self._max_wait_s = max_wait_s
        self._max_tokens = max_tokens
        self._size = size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batch")
        self._queue: asyncio.Queue[_Pending[ItemT, ResultT]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None
        self._turn = 0
        self.batches = 0  # forwards run, for tests and metrics
        self.items_run = 0

    def _ensure_worker(self) -> asyncio.Queue[_Pending[ItemT, ResultT]]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._arrived = asyncio.Event()
            self._worker = loop.create_task(self._work(self._queue), name="micro-batcher")
        assert self._queue is not None
        return self._queue

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        if not items:
            return []
        future: asyncio.Future[list[ResultT]] = asyncio.get_running_loop().create_future()
        self._ensure_worker().put_nowait(_Pending(items, future))
        assert self._arrived is not None
        self._arrived.set()
        return await future

    async def _gather(
        self, queue: asyncio.Queue[_Pending[ItemT, ResultT]], active: list[_Pending[ItemT, ResultT]]
    ) -> None:
        """Adds arrivals to ``active``: waits for one when there is none, and up to ``max_wait_s`` for
        more while fewer than ``max_items`` items wait."""
        if not active:
            active.append(await queue.get())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        while True:
            while not queue.empty():
                active.append(queue.get_nowait())
            remaining = deadline - loop.time()
            if sum(p.untaken for p in active) >= self._max_items or remaining <= 0:
                return
            # asyncio.wait (unlike wait_for on 3.11) never swallows the worker's own cancellation.
            assert self._arrived is not None
            self._arrived.clear()
            waiter = loop.create_task(self._arrived.wait())
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                waiter.cancel()

    def _next_batch(
        self, active: list[_Pending[ItemT, ResultT]]
    ) -> list[tuple[_Pending[ItemT, ResultT], int]]:
        """One item from each request in turn (starting with a different one each time) until a bound."""
        start = self._turn % len(active)
        self._turn += 1
        order = active[start:] + active[:start]
        batch: list[tuple[_Pending[ItemT, ResultT], int]] = []
        widest = 0
        while len(batch) < self._max_items:
            progressed = False
            for pending in order:
                if pending.untaken == 0:
                    continue
                width = max(widest, self._size(pending.items[pending.taken]))
                if batch and self._max_tokens is not None and width * (len(batch) + 1) > self._max_tokens:
                    return batch
                batch.append((pending, pending.taken))
                pending.taken += 1
                widest, progressed = width, True
                if len(batch) >= self._max_items:
                    break
            if not progressed:
                break
        return batch

    async def _work(self, queue: asyncio.Queue[_Pending[ItemT, ResultT]]) -> None:
        loop = asyncio.get_running_loop()
        active: list[_Pending[ItemT, ResultT]] = []
        while True:
            await self._gather(queue, active)
            active[:] = [p for p in active if not p.future.done() and p.untaken]  # cancelled callers leave
            if not active:
                continue
            batch = self._next_batch(active)
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run, [p.items[i] for p, i in batch]
                )
            except Exception as exc:  # handed to every caller with an item in this batch
                for pending in {id(p): p for p, _ in batch}.values():
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            self.batches += 1
            self.items_run += len(batch)
            for (pending, index), result in zip(batch, results, strict=True):
                pending.results[index] = result
                if len(pending.results) == len(pending.items) and not pending.future.done():
                    pending.future.set_result([pending.results[i] for i in range(len(pending.items))])

    def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
