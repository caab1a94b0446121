import asyncio
import threading

import pytest

from retrievers.micro_batcher import MicroBatcher


async def test_collects_concurrent_requests_into_one_call():
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        return [x * 10 for x in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_items=64, max_wait_s=0.05)
    results = await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(8)))
    assert results == [[i * 10, (i + 100) * 10] for i in range(8)]
    assert len(calls) == 1 and len(calls[0]) == 16
    batcher.close()


async def test_respects_max_items_and_runs_alone_requests_after_the_wait():
    sizes: list[int] = []
    gate = threading.Event()

    def run(items: list[int]) -> list[int]:
        gate.wait(1)
        sizes.append(len(items))
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_items=4, max_wait_s=0.01)
    gate.set()
    await asyncio.gather(*(batcher.submit([i]) for i in range(10)))
    assert max(sizes) <= 4 and sum(sizes) == 10
    assert await batcher.submit([7]) == [7]
    batcher.close()


async def test_errors_reach_every_caller_of_the_batch_and_the_worker_survives():
    def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_items=8, max_wait_s=0.02)
    outcomes = await asyncio.gather(batcher.submit([1]), batcher.submit([13]), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert await batcher.submit([2]) == [2]
    batcher.close()


async def test_a_cancelled_caller_does_not_break_others():
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda xs: xs, max_items=8, max_wait_s=0.05)
    doomed = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await batcher.submit([2]) == [2]
    with pytest.raises(asyncio.CancelledError):
        await doomed
    batcher.close()
