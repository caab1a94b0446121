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


async def test_a_large_request_shares_bounded_batches_round_robin_with_a_small_one():
    """Issue 20, row 2: a request of many items runs in bounded forwards; one item of a request that
    arrives meanwhile goes into the very next forward."""
    batches: list[list[int]] = []
    first_started = threading.Event()
    release = threading.Event()

    def run(items: list[int]) -> list[int]:
        first_started.set()
        release.wait(5)
        batches.append(list(items))
        return [x * 2 for x in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_items=8, max_wait_s=0.0)
    large = asyncio.ensure_future(batcher.submit(list(range(100))))
    assert await asyncio.to_thread(first_started.wait, 5)
    small = asyncio.ensure_future(batcher.submit([1000]))
    await asyncio.sleep(0.01)
    release.set()
    assert await small == [2000]
    assert 1000 in batches[1], "the small request waited for more than the forward under way"
    assert await large == [x * 2 for x in range(100)]
    assert max(len(b) for b in batches) <= 8
    batcher.close()


async def test_padded_batch_tokens_are_bounded():
    batches: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        batches.append(list(items))
        return items

    # Items are their own sizes: a forward holds at most 100 padded tokens (items x the largest)
    batcher: MicroBatcher[int, int] = MicroBatcher(
        run, max_items=64, max_wait_s=0.0, max_tokens=100, size=int
    )
    sizes = [10] * 20 + [60, 200]
    assert await batcher.submit(sizes) == sizes
    assert all(len(b) * max(b) <= 100 or len(b) == 1 for b in batches)
    assert [b for b in batches if max(b) == 200] == [[200]]  # too large alone: runs alone
    batcher.close()


async def test_a_cancelled_request_has_its_remaining_batches_dropped():
    ran: list[int] = []
    started = threading.Event()

    def run(items: list[int]) -> list[int]:
        started.set()
        ran.extend(items)
        threading.Event().wait(0.02)
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_items=4, max_wait_s=0.0)
    doomed = asyncio.ensure_future(batcher.submit(list(range(1000))))
    assert await asyncio.to_thread(started.wait, 5)
    await asyncio.sleep(0.05)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await batcher.submit([7]) == [7]
    run_after_cancel = len(ran)
    assert run_after_cancel < 100
    await asyncio.sleep(0.1)
    assert len(ran) == run_after_cancel
    assert batcher.items_run == len(ran)
    batcher.close()
