"""Collects concurrent requests into one batched call: waits up to ``max_wait_s`` or ``max_items``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(slots=True)
class _Pending(Generic[ItemT, ResultT]):
    items: Sequence[ItemT]
    future: asyncio.Future[list[ResultT]]


class MicroBatcher(Generic[ItemT, ResultT]):
    """``await submit(items)`` returns ``run(all collected items)``'s slice for those items.

    ``run`` is blocking (a torch forward); it runs on one worker thread, so while a batch is being
    computed the next one collects. One batcher serves one event loop at a time (re-bound if it changes).
    """

    def __init__(
        self, run: Callable[[list[ItemT]], list[ResultT]], *, max_items: int, max_wait_s: float
    ) -> None:
        self._run = run
        self._max_items = max_items
        self._max_wait_s = max_wait_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batch")
        self._queue: asyncio.Queue[_Pending[ItemT, ResultT]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None
        self.batches = 0  # forwards run, for tests and metrics

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

    async def _collect(
        self, queue: asyncio.Queue[_Pending[ItemT, ResultT]]
    ) -> list[_Pending[ItemT, ResultT]]:
        batch = [await queue.get()]
        count = len(batch[0].items)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        while count < self._max_items:
            if not queue.empty():
                pending = queue.get_nowait()
                batch.append(pending)
                count += len(pending.items)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            # asyncio.wait (unlike wait_for on 3.11) never swallows the worker's own cancellation.
            assert self._arrived is not None
            self._arrived.clear()
            waiter = loop.create_task(self._arrived.wait())
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                waiter.cancel()
        return batch

    async def _work(self, queue: asyncio.Queue[_Pending[ItemT, ResultT]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(queue)
            live = [p for p in batch if not p.future.done()]  # cancelled callers are skipped
            if not live:
                continue
            flat = [item for pending in live for item in pending.items]
            try:
                results = await loop.run_in_executor(self._executor, self._run, flat)
            except Exception as exc:  # handed to every caller of this batch
                for pending in live:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for pending in live:
                end = start + len(pending.items)
                if not pending.future.done():
                    pending.future.set_result(results[start:end])
                start = end

    def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
