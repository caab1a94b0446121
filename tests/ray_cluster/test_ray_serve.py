"""The gateway as a Ray Serve application on a local Ray (2 CPUs), driven by the official openai client.

One Ray session for the module: chat, streaming, several models, a replica killed mid-load, autoscaling
up and back down, the same application redeployed with tenancy on (keys, scopes, limits, the ledger on
PostgreSQL), then a clean shutdown with no process of the session left.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import httpx
import openai
import pytest

from core.tenancy import Limits, Scopes
from ray_cluster.builder import model_deployment_name
from ray_cluster.settings import ReplicaSettings
from tenancy.build import load_secret
from tenancy.database import Database
from tenancy.keys import KeyStore
from tenancy.settings import LedgerSettings, TenancySettings
from tenancy.usage_report import UsageSummary, usage_report
from tests.ray_cluster import ray_session as H

pytestmark = pytest.mark.ray


# A model that scales 1 → 3 replicas when each has more than one request in flight, and back after 3 s idle.
SCALING = ReplicaSettings(
    num_cpus=0.1,
    min_replicas=1,
    max_replicas=3,
    target_ongoing_requests=1,
    max_ongoing_requests=4,
    upscale_delay_s=0.5,
    downscale_delay_s=3.0,
    metrics_interval_s=0.5,
    look_back_period_s=1.0,
    health_check_period_s=1.0,
)
# The model whose replica is killed: a slow health check keeps it down long enough to watch /ready.
FRAGILE = ReplicaSettings(num_cpus=0.1, health_check_period_s=4.0)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    config = H.cluster_config(
        str(tmp_path_factory.mktemp("ray-home")),
        [
            H.double_spec("double-a"),
            H.double_spec("double-b", tokens=8, itl_s=0.03),
            H.double_spec("double-fragile", tokens=200, itl_s=0.01),
            H.double_spec("double-scaling", tokens=100, itl_s=0.02),
        ],
        replicas={"double-fragile": FRAGILE, "double-scaling": SCALING},
    )
    ray_session = H.RaySession(config).start()
    yield ray_session
    ray_session.shutdown()


def _serve_status():  # -> ray.serve.schema.ServeStatus
    from ray import serve

    with warnings.catch_warnings():
        # The status re-validates our autoscaling configs, whose metrics_interval_s Serve calls deprecated.
        warnings.filterwarnings("ignore", "The `metrics_interval_s` field", DeprecationWarning)
        return serve.status()


def _client(session: object, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{session.base_url}/v1", api_key="unused", max_retries=0, **kwargs)


def test_chat_completion_through_serve_proxy(session: object) -> None:
    with _client(session) as client:
        reply = client.chat.completions.create(
            model="double-a", messages=[{"role": "user", "content": "hello"}], max_tokens=16
        )
    assert reply.model == "double-a"
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens == 16


def test_each_model_is_its_own_deployment(session: object) -> None:
    with _client(session) as client:
        listed = {model.id for model in client.models.list()}
        short = client.chat.completions.create(
            model="double-b", messages=[{"role": "user", "content": "hi"}], max_tokens=64
        )
    assert {"double-a", "double-b", "double-fragile", "double-scaling"} <= listed
    assert short.usage is not None and short.usage.completion_tokens == 8

    deployments = _serve_status().applications[session.config.ray.app_name].deployments
    for model_id in ("double-a", "double-b"):
        assert deployments[model_deployment_name(model_id)].replica_states.get("RUNNING") == 1


def test_stream_arrives_chunk_by_chunk(session: object) -> None:
    arrivals: list[float] = []
    texts: list[str] = []
    with _client(session) as client:
        start = time.perf_counter()
        stream = client.chat.completions.create(
            model="double-b",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = None
        for event in stream:
            if event.choices and event.choices[0].delta.content:
                arrivals.append(time.perf_counter() - start)
                texts.append(event.choices[0].delta.content)
            usage = event.usage or usage
    assert len(texts) == 8
    assert usage is not None and usage.completion_tokens == 8
    # Not buffered: tokens arrive spread over the generation (8 tokens 30 ms apart), the first well
    # before the last was even produced.
    assert arrivals[-1] - arrivals[0] >= 0.15
    assert len({round(t, 2) for t in arrivals}) >= 6


def _model_handle(session: object, model_id: str):  # -> DeploymentHandle
    from ray import serve

    return serve.get_deployment_handle(model_deployment_name(model_id), session.config.ray.app_name)


async def test_closing_the_proxy_stream_cancels_the_replica_generation(session: object) -> None:
    from core.chat import ChatMessage, GenerationRequest, SamplingParams
    from ray_cluster.engine_proxy import EngineProxy

    handle = _model_handle(session, "double-fragile")
    proxy = EngineProxy("double-fragile", handle)
    await proxy.start()
    assert proxy.info.id == "double-fragile"
    request = GenerationRequest(
        request_id="cancel-me", params=SamplingParams(), messages=(ChatMessage(role="user", content="x"),)
    )
    stream = proxy.generate(request)
    first = await anext(stream)
    assert first.finish_reason is None
    assert await handle.active_generations.remote() == 1
    await stream.aclose()
    # 200 tokens at 10 ms would keep the replica busy for 2 s; cancelled, it is idle again at once.
    for _ in range(20):  # at most 1 s
        if not await handle.active_generations.remote():
            break
        await asyncio.sleep(0.05)
    assert await handle.active_generations.remote() == 0


def _kill_one_replica(session: object, model_id: str) -> str:
    import ray

    marker = f"#{model_deployment_name(model_id)}#"
    names = [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == "serve" and marker in actor["name"]
    ]
    assert names, f"no replica actor of {model_id}"
    ray.kill(ray.get_actor(names[0], namespace="serve"))
    return names[0]


def test_killed_replica_gives_clean_503_then_recovers(session: object) -> None:
    base = session.base_url
    body = {"model": "double-fragile", "messages": [{"role": "user", "content": "long"}]}
    outcomes: dict[str, object] = {}

    def plain() -> None:
        outcomes["plain"] = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30)

    def streamed() -> None:
        texts: list[str] = []
        try:
            with _client(session) as client:
                for event in client.chat.completions.create(**body, stream=True):
                    if event.choices and event.choices[0].delta.content:
                        texts.append(event.choices[0].delta.content)
        except openai.APIError as exc:
            outcomes["stream_error"] = exc
        outcomes["stream_texts"] = texts

    threads = [threading.Thread(target=plain), threading.Thread(target=streamed)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # both are mid-generation (200 tokens at 10 ms)
    _kill_one_replica(session, "double-fragile")
    ready_codes: list[int] = []
    while any(thread.is_alive() for thread in threads) or 503 not in ready_codes:
        ready_codes.append(httpx.get(f"{base}/ready", timeout=5).status_code)
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200  # alive throughout
        if len(ready_codes) > 100:
            break
        time.sleep(0.1)
    for thread in threads:
        thread.join(timeout=30)

    plain_reply = outcomes["plain"]
    assert plain_reply.status_code == 503
    error = plain_reply.json()["error"]
    assert error["code"] == "engine_unavailable"
    assert error["message"] and error["type"]
    # The stream had started (200 and some text) and ends with OpenAI's error event, which the client raises.
    assert outcomes["stream_texts"]
    assert isinstance(outcomes.get("stream_error"), openai.APIError)
    # /ready told the truth while no replica of the model answered.
    assert 503 in ready_codes

    session.wait_ready(timeout_s=60)
    with _client(session) as client:
        reply = client.chat.completions.create(
            model="double-fragile", messages=[{"role": "user", "content": "again"}], max_tokens=3
        )
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def _running_replicas(session: object, model_id: str) -> int:
    app = _serve_status().applications[session.config.ray.app_name]
    return int(app.deployments[model_deployment_name(model_id)].replica_states.get("RUNNING", 0))


def test_burst_scales_replicas_up_and_idle_scales_them_down(session: object) -> None:
    assert _running_replicas(session, "double-scaling") == 1

    async def burst() -> int:
        peak = 1
        async with openai.AsyncOpenAI(
            base_url=f"{session.base_url}/v1", api_key="unused", max_retries=0, timeout=60
        ) as client:

            async def one() -> None:
                await client.chat.completions.create(
                    model="double-scaling", messages=[{"role": "user", "content": "x"}]
                )

            # Bounded: 4 waves of 8 concurrent 2-second requests, while watching the replica count.
            for _ in range(4):
                wave = asyncio.gather(*(one() for _ in range(8)))
                while not wave.done():
                    peak = max(peak, await asyncio.to_thread(_running_replicas, session, "double-scaling"))
                    await asyncio.sleep(0.25)
                await wave
                if peak >= 3:
                    break
        return peak

    started = time.monotonic()
    peak = asyncio.run(burst())
    assert peak >= 2, "the burst did not add replicas"
    deadline = time.monotonic() + 45
    while _running_replicas(session, "double-scaling") > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _running_replicas(session, "double-scaling") == 1, "idle replicas were not removed"
    assert time.monotonic() - started < 90


TENANT = "ray-tenant"
RPM = 6


def _tenancy_ledger(
    database_url: str, expected: int
) -> tuple[list[tuple[str, int, int, int]], UsageSummary | None]:
    """Every row (model, status, prompt, completion) and the project's sums, once ``expected`` rows are
    there (or after 30 s): the ingress writes them off the request path."""
    database = Database(database_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            summary = usage_report(database, TENANT, by="project")
            if sum(row.requests for row in summary) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        rows = database.execute("SELECT model, status, prompt_tokens, completion_tokens FROM usage")
    finally:
        database.close()
    return [(str(m), int(s), int(p), int(c)) for m, s, p, c in rows], (summary[0] if summary else None)


@pytest.mark.slow
def test_tenancy_keys_scopes_rpm_and_ledger_on_postgresql(session: object, postgres: object) -> None:
    """`ray.ingress: serve` (the `aihub serve --ray` default): tenancy is built in the ingress replica.

    Redeploys this module's application with tenancy on, on the same Ray and Serve, then puts the
    application back as it was: the ingress replica with tenancy stops, and its ledger writes its rows.
    """
    from ray_cluster.launch import deploy

    database_url = postgres.new_database()
    # No periodic write during the test: the rows reach PostgreSQL when the ingress replica stops.
    settings = TenancySettings(
        enabled=True, database_url=database_url, ledger=LedgerSettings(flush_interval_s=300.0)
    )
    config = replace(session.config, tenancy=settings)
    keys = Database(database_url)
    try:
        token, _ = KeyStore(keys, load_secret(settings, config.app.home)).create(
            TENANT, scopes=Scopes(models=("double-a",)), limits=Limits(rpm=RPM)
        )
    finally:
        keys.close()
    assert deploy(config, host="127.0.0.1", port=config.ray.port) == session.base_url
    session.pids |= H._ray_processes()
    base = f"{session.base_url}/v1"
    # serve.run returned once the new version runs; no request may reach the old ingress now.
    assert httpx.get(f"{base}/models", timeout=5).status_code == 401

    seen: list[tuple[int, int]] = []  # (prompt, completion) of every 200, as the client saw them
    with openai.OpenAI(base_url=base, api_key=token, max_retries=0, timeout=30) as client:
        minute = int(time.time() // 60)
        raw = client.chat.completions.with_raw_response.create(
            model="double-a", messages=[{"role": "user", "content": "hello"}], max_tokens=5
        )
        assert raw.headers["x-ratelimit-limit-requests"] == str(RPM)
        reply = raw.parse()
        assert reply.usage is not None and reply.usage.completion_tokens == 5
        seen.append((reply.usage.prompt_tokens, reply.usage.completion_tokens))
        usage = None
        for event in client.chat.completions.create(
            model="double-a",
            messages=[{"role": "user", "content": "stream it"}],
            stream=True,
            stream_options={"include_usage": True},
        ):
            usage = event.usage or usage
        assert usage is not None and usage.completion_tokens == 16
        seen.append((usage.prompt_tokens, usage.completion_tokens))

        # Another deployed model does not exist for this key: not listed, a 404 (one ledger row).
        assert [model.id for model in client.models.list()] == ["double-a"]
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="double-b", messages=[{"role": "user", "content": "x"}])

        # Three requests admitted so far (two 200s and the 404): the rpm limit answers 429 soon.
        limited = None
        for max_tokens in range(1, 2 * RPM + 1):
            try:
                reply = client.chat.completions.create(
                    model="double-a", messages=[{"role": "user", "content": "again"}], max_tokens=max_tokens
                )
            except openai.RateLimitError as exc:
                limited = exc
                break
            assert reply.usage is not None
            seen.append((reply.usage.prompt_tokens, reply.usage.completion_tokens))
        assert limited is not None, f"no 429 at rpm {RPM}"
        assert limited.code == "rate_limit_exceeded"
        assert int(limited.response.headers["retry-after"]) >= 1
        if int(time.time() // 60) == minute:  # all in one fixed window: exactly the limit was admitted
            assert len(seen) + 1 == RPM

    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    with (
        openai.OpenAI(base_url=base, api_key=wrong, max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.chat.completions.create(model="double-a", messages=[{"role": "user", "content": "x"}])

    assert _tenancy_ledger(database_url, expected=0)[0] == []  # still queued in the ingress replica
    # The application as it was: Serve stops the tenancy ingress (its ASGI lifespan flushes the ledger).
    deploy(session.config, host="127.0.0.1", port=session.config.ray.port)
    session.pids |= H._ray_processes()
    assert httpx.get(f"{base}/models", timeout=5).status_code == 200

    # One row per admitted request (neither the 401 nor the 429), the tokens the client saw.
    rows, total = _tenancy_ledger(database_url, expected=len(seen) + 1)
    assert Counter((p, c) for _, status, p, c in rows if status == 200) == Counter(seen)
    assert {model for model, status, _, _ in rows if status == 200} == {"double-a"}
    assert [(status, p, c) for _, status, p, c in rows if status != 200] == [(404, 0, 0)]
    assert total is not None
    assert (total.requests, total.streamed, total.errors) == (len(seen) + 1, 1, 1)
    assert total.prompt_tokens == sum(p for p, _ in seen)
    assert total.completion_tokens == sum(c for _, c in seen)


def test_shutdown_leaves_no_ray_process(session: object) -> None:
    assert session.pids, "the session's Ray processes were not found"
    alive = session.shutdown()
    assert not alive, f"Ray processes left behind: {sorted(alive)}"
    import ray

    assert not ray.is_initialized()
