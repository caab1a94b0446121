"""What Ray mode costs per request: the same fixed-latency double behind embedded uvicorn and Ray Serve.

Both gateways run outside the measuring process (uvicorn in a spawned child, Ray in its own
processes) at the same time; the client of ``bench.loadgen`` alternates one request to each
(concurrency 1), so both see the same background load: non-streamed end-to-end latency gives the
per-request overhead, streamed requests the time to first token.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx

from bench.loadgen import LoadReport, LoadSpec, RequestTiming, http_runner, summarize
from bench.serving_bench import http_client
from core.model_config import ModelConfig
from gateway.settings import GatewaySettings
from ray_cluster.config import AihubConfig
from ray_cluster.settings import RaySettings, ReplicaSettings

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentResponseGenerator

logger = logging.getLogger(__name__)

MODEL_ID = "fixed-latency-double"
DOUBLE_OPTIONS: dict[str, Any] = {"ttft_s": 0.02, "itl_s": 0.005, "tokens": 16}


@dataclass(frozen=True)
class RayFloor:
    """What Ray itself costs on this machine, without Serve: one round trip to a plain actor."""

    actor_call_ms: float  # p50 of an awaited no-op actor method
    stream_one_ms: float  # p50 of a streaming-generator call yielding one item


@dataclass(frozen=True)
class HandleCost:
    """What a Serve handle call to the model replica adds over the same double called in-process
    (p50 differences, paired): the Ray part of Ray mode's overhead, without any HTTP."""

    unary_ms: float  # ``generate_final``: the whole answer in one reply
    first_chunk_ms: float  # a streaming call, until its first chunk


@dataclass(frozen=True)
class RayOverhead:
    embedded_plain: LoadReport
    ray_plain: LoadReport
    embedded_stream: LoadReport
    ray_stream: LoadReport
    floor: RayFloor | None = None
    # The same replicas behind the gateway served by a driver process (``ray.ingress: driver``).
    driver_plain: LoadReport | None = None
    driver_stream: LoadReport | None = None
    handle: HandleCost | None = None

    @property
    def driver_overhead_p50_ms(self) -> float | None:
        if self.driver_plain is None:
            return None
        return self.driver_plain.e2el_ms[0] - self.embedded_plain.e2el_ms[0]

    @property
    def driver_ttft_ratio(self) -> float | None:
        if self.driver_stream is None:
            return None
        return self.driver_stream.ttft_ms[0] / self.embedded_stream.ttft_ms[0]

    @property
    def overhead_p50_ms(self) -> float:
        """Median non-streamed latency added by Ray mode (target: at most 3 ms)."""
        return self.ray_plain.e2el_ms[0] - self.embedded_plain.e2el_ms[0]

    @property
    def ttft_ratio(self) -> float:
        """Median streamed time to first token, Ray over embedded (target: at most 1.1)."""
        return self.ray_stream.ttft_ms[0] / self.embedded_stream.ttft_ms[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "overhead_p50_ms": self.overhead_p50_ms,
            "ttft_ratio": self.ttft_ratio,
            "embedded_plain": self.embedded_plain.as_dict(),
            "ray_plain": self.ray_plain.as_dict(),
            "embedded_stream": self.embedded_stream.as_dict(),
            "ray_stream": self.ray_stream.as_dict(),
            "driver_overhead_p50_ms": self.driver_overhead_p50_ms,
            "driver_ttft_ratio": self.driver_ttft_ratio,
            "driver_plain": None if self.driver_plain is None else self.driver_plain.as_dict(),
            "driver_stream": None if self.driver_stream is None else self.driver_stream.as_dict(),
            "handle": None
            if self.handle is None
            else {"unary_ms": self.handle.unary_ms, "first_chunk_ms": self.handle.first_chunk_ms},
            "floor": None
            if self.floor is None
            else {"actor_call_ms": self.floor.actor_call_ms, "stream_one_ms": self.floor.stream_one_ms},
        }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_embedded(port: int, options: dict[str, Any]) -> None:
    """Child process: the embedded gateway (same app factory) over the double, on uvicorn."""
    import uvicorn

    from gateway.app import create_app
    from gateway.fast_path.http_protocol import CoalescingHttpToolsProtocol
    from gateway.services import GatewayServices
    from serving.fixed_latency_engine import FixedLatencyEngineDouble

    engine = FixedLatencyEngineDouble(MODEL_ID, **options)
    app = create_app(GatewaySettings(), GatewayServices(engines={MODEL_ID: engine}))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http=CoalescingHttpToolsProtocol,
        log_level="warning",
        access_log=False,
    )


async def _wait_ready(base_url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base_url}/ready", timeout=2.0)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{base_url} not ready after {timeout_s} s")


async def _measure_interleaved(
    urls: list[str], requests: int, warmup: int, tokens: int, client: str = "lean"
) -> list[tuple[LoadReport, LoadReport]]:
    """Alternates one request to each gateway, so all see the same load on a shared machine.

    Per URL: (non-streamed report, streamed report).
    """
    reports: list[list[LoadReport]] = [[] for _ in urls]
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(http_client(client, url)) for url in urls]
        for stream in (False, True):
            spec = LoadSpec(concurrency=1, requests=requests, max_tokens=tokens, stream=stream)
            runners = [
                http_runner(session, url, MODEL_ID, spec) for session, url in zip(sessions, urls, strict=True)
            ]
            timings: list[list[RequestTiming]] = [[] for _ in urls]
            durations = [0.0 for _ in urls]
            for index in range(warmup + requests):
                for side, run_one in enumerate(runners):
                    started = time.perf_counter()
                    timing = await run_one()
                    if index >= warmup:
                        timings[side].append(timing)
                        durations[side] += time.perf_counter() - started
            for side in range(len(urls)):
                reports[side].append(summarize(1, timings[side], durations[side]))
    return [(plain, streamed) for plain, streamed in reports]


def _serve_driver_gateway(address: str, config: AihubConfig, port: int) -> None:
    """Child process: a second driver on the same cluster serving the gateway (``ingress: driver``)
    over handles to the very replicas the Serve ingress uses."""
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    for key, value in config.ray.serve_env.items():  # this process's handles, as in `aihub serve --ray`
        os.environ.setdefault(key, value)
    import ray
    from ray import serve

    from ray_cluster.builder import model_deployment_name
    from ray_cluster.driver_gateway import BackendHandles, serve_gateway

    ray.init(address=address, log_to_driver=False)
    app_name = config.ray.app_name
    models = {
        spec.id: serve.get_deployment_handle(model_deployment_name(spec.id), app_name)
        for spec in config.models
    }
    handles = BackendHandles(models=models, embedders={}, retrievers=None, applications=())
    asyncio.run(serve_gateway(config, handles, host="127.0.0.1", port=port))


def ray_bench_config(home: Path, port: int, options: dict[str, Any]) -> AihubConfig:
    small = ReplicaSettings(num_cpus=0.1)
    return AihubConfig.build(
        home,
        (ModelConfig(id=MODEL_ID, engine="fixed-latency", options=options),),
        ray=RaySettings(num_cpus=2, port=port, gateway=small, default_model=small),
    )


async def measure_ray_floor(calls: int = 200) -> RayFloor:
    """p50 of bare Ray round trips to a plain actor (the connected Ray, same moment as the rest)."""
    import statistics

    import ray

    @ray.remote(num_cpus=0.01)
    class Echo:
        async def ping(self) -> int:
            return 1

        async def items(self, count: int) -> Any:
            for i in range(count):
                yield i

    echo = Echo.remote()  # type: ignore[attr-defined]
    await echo.ping.remote()

    async def one_item() -> None:
        async for ref in echo.items.options(num_returns="streaming").remote(1):
            await ref

    async def ping() -> None:
        await echo.ping.remote()

    figures: list[float] = []
    for call in (ping, one_item):
        samples = []
        for index in range(calls + 20):
            started = time.perf_counter()
            await call()
            if index >= 20:
                samples.append((time.perf_counter() - started) * 1000)
        figures.append(statistics.median(samples))
    ray.kill(echo)
    return RayFloor(actor_call_ms=figures[0], stream_one_ms=figures[1])


async def measure_handle_cost(
    app_name: str, options: dict[str, Any], calls: int = 100, warmup: int = 10
) -> HandleCost:
    """The model deployment's handle against an in-process double with the same options, in turn."""
    import statistics

    from ray import serve

    from core.chat import ChatMessage, GenerationRequest, SamplingParams
    from ray_cluster.builder import model_deployment_name
    from serving.fixed_latency_engine import FixedLatencyEngineDouble

    handle = serve.get_deployment_handle(model_deployment_name(MODEL_ID), app_name)
    streaming = handle.options(stream=True)
    local = FixedLatencyEngineDouble(MODEL_ID, **options)
    await local.start()
    request = GenerationRequest(
        request_id="handle-cost",
        params=SamplingParams(max_tokens=int(options["tokens"]), temperature=0.0),
        messages=(ChatMessage(role="user", content="How far does a handle call go?"),),
    )

    async def in_process() -> tuple[float, float]:
        started = time.perf_counter()
        stream = local.generate(request)
        await anext(stream)
        first = time.perf_counter() - started
        async for _ in stream:
            pass
        return first, time.perf_counter() - started

    async def unary() -> float:
        started = time.perf_counter()
        await handle.generate_final.remote(request, MODEL_ID)
        return time.perf_counter() - started

    async def first_chunk() -> float:
        started = time.perf_counter()
        stream = cast("DeploymentResponseGenerator[Any]", streaming.generate.remote(request, MODEL_ID))
        await anext(stream)
        first = time.perf_counter() - started
        async for _ in stream:
            pass
        return first

    added_unary: list[float] = []
    added_first: list[float] = []
    try:
        for index in range(warmup + calls):
            local_first, local_all = await in_process()
            remote_all = await unary()
            remote_first = await first_chunk()
            if index >= warmup:
                added_unary.append((remote_all - local_all) * 1000)
                added_first.append((remote_first - local_first) * 1000)
    finally:
        await local.aclose()
    return HandleCost(unary_ms=statistics.median(added_unary), first_chunk_ms=statistics.median(added_first))


async def measure_ray_vs_embedded(
    *,
    requests: int = 200,
    warmup: int = 20,
    double_options: dict[str, Any] | None = None,
    home: Path | None = None,
    client: str = "lean",
) -> RayOverhead:
    """Starts the embedded gateway, then a local Ray (2 CPUs) with the same double; both on loopback.

    The caller sets ``RAY_USAGE_STATS_ENABLED=0`` (and ``RAY_AUTH_MODE=disabled``) in the environment.
    """
    import ray

    from ray_cluster.launch import deploy, start_ray, stop

    options = {**DOUBLE_OPTIONS, **(double_options or {})}
    tokens = int(options["tokens"])
    port = _free_port()
    embedded_url = f"http://127.0.0.1:{port}"
    child = multiprocessing.get_context("spawn").Process(target=_serve_embedded, args=(port, options))
    child.start()
    try:
        with tempfile.TemporaryDirectory(prefix="aihub-ray-bench-") as tmp:
            config = ray_bench_config(home or Path(tmp), _free_port(), options)
            start_ray(config)
            driver = None
            try:
                ray_url = await asyncio.to_thread(deploy, config, host="127.0.0.1", port=config.ray.port)
                driver_port = _free_port()
                address = ray.get_runtime_context().gcs_address
                driver = multiprocessing.get_context("spawn").Process(
                    target=_serve_driver_gateway, args=(address, config, driver_port)
                )
                driver.start()
                driver_url = f"http://127.0.0.1:{driver_port}"
                for url in (embedded_url, ray_url, driver_url):
                    await _wait_ready(url)
                embedded, serve_proxy, from_driver = await _measure_interleaved(
                    [embedded_url, ray_url, driver_url], requests, warmup, tokens, client
                )
                handle = await measure_handle_cost(config.ray.app_name, options, calls=min(100, requests))
                floor = await measure_ray_floor()
            finally:
                if driver is not None:
                    driver.terminate()
                    driver.join(timeout=15)
                stop()
    finally:
        child.terminate()
        child.join(timeout=15)
    return RayOverhead(
        embedded_plain=embedded[0],
        ray_plain=serve_proxy[0],
        embedded_stream=embedded[1],
        ray_stream=serve_proxy[1],
        floor=floor,
        handle=handle,
        driver_plain=from_driver[0],
        driver_stream=from_driver[1],
    )
