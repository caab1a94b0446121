"""`aihub bench upstream`: one OpenAI-compatible upstream called directly, through aihub and through
LiteLLM's proxy, by the same client in one run.

Every contender gets the lean client (``bench.lean_http``: what a client spends parsing is not the
server's), the same body and the same bearer key. Per phase the contenders take turns in rounds, the
order rotating each round (as ``bench.side_by_side``), so that drift of the machine falls on all alike.
Each client is kept for the whole run, and each turn starts with untimed requests at the turn's
concurrency: the servers close idle keep-alive connections while the others run, and a new TCP
connection on a timed request would land in p99.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from bench.lean_http import LeanHttpClient, LeanResponse
from bench.loadgen import LoadReport, LoadSpec, RequestTiming, closed_loop, http_runner, summarize

DIRECT = "direct"
AIHUB = "aihub"
PROMPT = "Say hello to the upstream benchmark."


class BearerLeanClient(LeanHttpClient):
    """The lean client with an ``Authorization`` header on every request.

    LiteLLM's proxy does not start without a master key, so every contender is sent the same header
    (aihub is configured with the same key; the upstream ignores it).
    """

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(base_url)
        self._auth = b"authorization: Bearer %s\r\n" % key.encode()

    @asynccontextmanager
    async def post(
        self, path: str, body: bytes, content_type: bytes = b"application/json", headers: bytes = b""
    ) -> AsyncIterator[LeanResponse]:
        async with super().post(path, body, content_type, headers + self._auth) as response:
            yield response


@dataclass(frozen=True)
class Server:
    """A contender: an OpenAI-compatible server, the model id it is asked for, and its process group
    (for its CPU time; None when it was not started here)."""

    name: str
    base_url: str
    model: str
    pgid: int | None = None


def group_cpu_s(pgid: int | None) -> float:
    """CPU seconds (user + system) of the live processes in a process group: the server and whatever
    it started. Processes that ended are not counted; these servers keep theirs."""
    if pgid is None:
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while listed
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, …, utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Pooled:
    """One contender's timed turns in one phase, rounds pooled."""

    timings: list[RequestTiming]
    seconds: float = 0.0
    cpu_s: float = 0.0


@dataclass(frozen=True)
class Measured:
    reports: dict[str, dict[str, LoadReport]]  # by phase, then contender
    cpu_ms: dict[str, dict[str, float | None]]  # the contender's own CPU per request, same keys
    last_phase_rounds: int


@dataclass(frozen=True)
class Phase:
    key: str  # c1_json, c1_stream, c16_json
    concurrency: int
    stream: bool
    requests: int  # per contender and round


def phases(requests: int, stream_requests: int, load_requests: int, concurrency: int) -> list[Phase]:
    return [
        Phase("c1_json", 1, False, requests),
        Phase("c1_stream", 1, True, stream_requests),
        Phase(f"c{concurrency}_json", concurrency, False, max(load_requests, 2 * concurrency)),
    ]


async def measure(
    contenders: Sequence[Server],
    plan: Sequence[Phase],
    *,
    key: str,
    max_tokens: int,
    rounds: int,
    time_limit_s: float,
    console: Console | None = None,
) -> Measured:
    """Reports by phase and contender (rounds pooled), with each one's CPU time per request.

    The time limit is checked between rounds only, so that every contender runs as many as the others.
    """
    deadline = time.monotonic() + time_limit_s
    reports: dict[str, dict[str, LoadReport]] = {}
    cpu_ms: dict[str, dict[str, float | None]] = {}
    done_rounds = 0
    async with AsyncExitStack() as stack:
        clients: dict[str, LeanHttpClient] = {}
        for contender in contenders:
            client = BearerLeanClient(contender.base_url, key)
            stack.push_async_callback(client.aclose)
            clients[contender.name] = client

        async def turn(contender: Server, spec: LoadSpec) -> tuple[list[RequestTiming], float]:
            runner = http_runner(clients[contender.name], contender.base_url, contender.model, spec)
            return await closed_loop(runner, spec)

        for phase in plan:
            spec = LoadSpec(
                concurrency=phase.concurrency,
                requests=phase.requests,
                max_tokens=max_tokens,
                prompt=PROMPT,
                stream=phase.stream,
            )
            wake = LoadSpec(
                concurrency=phase.concurrency,
                requests=2 * phase.concurrency,
                max_tokens=max_tokens,
                prompt=PROMPT,
                stream=phase.stream,
            )
            pooled = {c.name: Pooled([]) for c in contenders}
            done_rounds = 0
            for round_ in range(rounds):
                if round_ and time.monotonic() > deadline:
                    break
                shift = round_ % len(contenders)
                for contender in [*contenders[shift:], *contenders[:shift]]:
                    await turn(contender, wake)
                    # A turn ends at the deadline too (bounded): the round it falls in is the last.
                    limit = max(1.0, deadline - time.monotonic())
                    cpu_before = group_cpu_s(contender.pgid)
                    timings, seconds = await turn(contender, replace(spec, time_limit_s=limit))
                    sink = pooled[contender.name]
                    sink.cpu_s += group_cpu_s(contender.pgid) - cpu_before
                    sink.timings += timings
                    sink.seconds += seconds
                done_rounds += 1
                if console is not None:
                    console.print(f"  {phase.key} round {round_ + 1}/{rounds} done")
            reports[phase.key] = {
                name: summarize(phase.concurrency, sink.timings, sink.seconds)
                for name, sink in pooled.items()
            }
            cpu_ms[phase.key] = {
                c.name: None if c.pgid is None else 1000 * pooled[c.name].cpu_s / len(pooled[c.name].timings)
                for c in contenders
            }
    return Measured(reports, cpu_ms, done_rounds)
