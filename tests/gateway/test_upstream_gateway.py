"""The ``openai`` engine end to end: the official client → aihub → real HTTP upstreams."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from aihub.gateway_process import GatewayProcess
from gateway.settings import GatewaySettings
from serving.settings import UpstreamSettings
from tests.support.upstreams import (
    REMOTE_MODEL,
    ScriptedUpstreamDouble,
    fixed_latency_upstream,
    front_gateway,
    scripted_upstream,
)

MESSAGES = [{"role": "user", "content": "say something"}]


@pytest.fixture(scope="module")
def slow_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A real upstream process: 8 tokens, 40 ms apart, so a re-buffered stream would show."""
    with fixed_latency_upstream(
        tmp_path_factory.mktemp("slow"), ttft_s=0.01, itl_s=0.04, tokens=8
    ) as process:
        yield process


def _model(*urls: str, model: str = REMOTE_MODEL, **options: object) -> dict[str, object]:
    upstreams = [{"url": url, "model": model} for url in urls]
    return {"id": "smollm2", "engine": "openai", "upstreams": upstreams, "options": options}


def _ready(url: str) -> dict:
    return httpx.get(f"{url}/ready", timeout=5).json()


def test_chat_streams_through_as_the_upstream_sends_and_usage_is_stripped_unless_asked(
    tmp_path: Path, slow_upstream: GatewayProcess, spec
) -> None:
    with front_gateway(tmp_path, [_model(slow_upstream.base_url + "/v1")]) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=5)
        assert reply.choices[0].message.content == "tok0 tok1 tok2 tok3 tok4"
        assert reply.choices[0].finish_reason == "length"
        direct = httpx.post(
            f"{slow_upstream.base_url}/v1/chat/completions",
            json={"model": REMOTE_MODEL, "messages": MESSAGES, "max_tokens": 5},
        ).json()["usage"]
        assert reply.usage is not None and reply.usage.model_dump(exclude_none=True) == direct
        spec.check("CreateChatCompletionResponse", reply.model_dump(exclude_unset=True))

        arrivals: list[float] = []
        pieces: list[str] = []
        start = time.perf_counter()
        for chunk in client.chat.completions.create(model="smollm2", messages=MESSAGES, stream=True):
            assert chunk.usage is None  # the client did not ask; aihub asked the upstream and kept it
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter() - start)
                pieces.append(chunk.choices[0].delta.content)
        assert "".join(pieces) == " ".join(f"tok{i}" for i in range(8))
        # Tokens leave the upstream 40 ms apart; passed on as they come, the first arrives long before the
        # last (a re-buffering proxy would deliver them together).
        assert arrivals[-1] - arrivals[0] > 0.15

        streamed = list(
            client.chat.completions.create(
                model="smollm2", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        usage = streamed[-1].usage
        assert usage is not None and usage.completion_tokens == 8
        assert usage.prompt_tokens == direct["prompt_tokens"]

        text = client.completions.create(model="smollm2", prompt="one two three", max_tokens=3)
        assert text.choices[0].text == "tok0 tok1 tok2" and text.usage is not None
        assert text.usage.prompt_tokens == 3


def test_the_upstreams_own_4xx_keeps_its_status_and_message(
    tmp_path: Path, slow_upstream: GatewayProcess
) -> None:
    with front_gateway(tmp_path, [_model(slow_upstream.base_url + "/v1")]) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(
                model="smollm2", messages=[{"role": "user", "content": "word " * 5000}], max_tokens=4
            )
        assert raised.value.status_code == 400
        assert raised.value.code == "context_length_exceeded"
        assert _ready(url)["models"]["smollm2"]["upstreams"][0]["errors"] == 0  # the request's fault


def test_failures_before_the_first_byte_go_to_another_upstream_and_eject_the_bad_one(tmp_path: Path) -> None:
    broken = ScriptedUpstreamDouble(mode="status", status=500)
    good = ScriptedUpstreamDouble()
    upstream = UpstreamSettings(health_check="off", eject_after_failures=2, cooldown_s=30)
    with scripted_upstream(broken) as broken_url, scripted_upstream(good) as good_url:
        models = [_model(broken_url, good_url)]
        with front_gateway(tmp_path, models, upstream=upstream) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            # Ties between idle upstreams go either way: ask until the broken one has failed twice.
            sent = 0
            while len(broken.requests) < 2:
                assert sent < 60
                reply = client.chat.completions.create(model="smollm2", messages=MESSAGES)
                assert reply.choices[0].message.content == "Hello there"  # retried on the good one
                sent += 1
            for _ in range(6):
                client.chat.completions.create(model="smollm2", messages=MESSAGES)
            assert len(broken.requests) == 2  # ejected: no more traffic during the cool-down
            assert len(good.requests) == sent + 6
            states = {u["url"]: u for u in _ready(url)["models"]["smollm2"]["upstreams"]}
            assert states[broken_url]["state"] == "ejected" and states[broken_url]["ejections"] == 1
            assert states[good_url]["state"] == "up"
            metrics = httpx.get(f"{url}/metrics").text
            assert (
                f'aihub_upstream_state{{model="smollm2",state="ejected",upstream="{broken_url}"}} 1.0'
                in metrics
            )
            assert f'aihub_upstream_errors_total{{model="smollm2",upstream="{broken_url}"}} 2.0' in metrics


@pytest.mark.parametrize(
    ("status", "error", "expected_status"),
    [(500, openai.APIStatusError, 502), (503, openai.APIStatusError, 503), (429, openai.RateLimitError, 429)],
)
def test_when_every_upstream_fails_the_client_gets_an_honest_status(
    tmp_path: Path, status: int, error: type[Exception], expected_status: int
) -> None:
    doubles = [ScriptedUpstreamDouble(mode="status", status=status) for _ in range(2)]
    upstream = UpstreamSettings(health_check="off")
    with scripted_upstream(doubles[0]) as first, scripted_upstream(doubles[1]) as second:
        models = [_model(first, second)]
        with front_gateway(tmp_path, models, upstream=upstream) as url:
            response = httpx.post(
                f"{url}/v1/chat/completions", json={"model": "smollm2", "messages": MESSAGES}
            )
            assert response.status_code == expected_status
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
            assert [len(d.requests) for d in doubles] == [1, 1]  # each tried once


def test_nothing_reachable_is_a_503_and_ready_says_so(tmp_path: Path) -> None:
    dead = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    with front_gateway(tmp_path, [_model(dead)]) as url:
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 503
        assert ready.json()["models"]["smollm2"]["upstreams"][0]["state"] == "down"
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": "smollm2", "messages": MESSAGES})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "engine_unavailable"


def test_a_stream_cut_by_the_upstream_ends_with_an_error_event_and_is_not_retried(tmp_path: Path) -> None:
    cut = ScriptedUpstreamDouble(mode="cut")
    other = ScriptedUpstreamDouble()
    upstream = UpstreamSettings(health_check="off", affinity=True)
    with scripted_upstream(cut) as cut_url, scripted_upstream(other) as other_url:
        models = [_model(cut_url, other_url)]
        with front_gateway(tmp_path, models, upstream=upstream) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            # Find a session that affinity sends to the cutting upstream.
            session = next(f"s{i}" for i in range(50) if _home(f"s{i}", [cut_url, other_url]) == cut_url)
            pieces: list[str] = []
            stream = client.chat.completions.create(
                model="smollm2", messages=MESSAGES, stream=True, user=session
            )
            with pytest.raises(openai.APIError, match="mid-stream"):
                _collect_text(stream, pieces)
            assert pieces == ["Hello", " there"]
            assert len(cut.requests) == 1 and len(other.requests) == 0  # never retried once a chunk was out


def _collect_text(stream: Iterable[Any], pieces: list[str]) -> None:
    for chunk in stream:
        pieces += [chunk.choices[0].delta.content or ""] if chunk.choices else []


def _home(session: str, urls: list[str]) -> str:
    """Where affinity sends ``session``: the pool's own rendezvous choice."""
    from serving.upstream.pool import _rendezvous

    return max(urls, key=lambda url: _rendezvous(session, url))


def test_timeouts_are_504s(tmp_path: Path) -> None:
    hung = ScriptedUpstreamDouble(mode="hang")
    upstream = UpstreamSettings(health_check="off", read_timeout_s=0.3, retries=0)
    with (
        scripted_upstream(hung) as hung_url,
        front_gateway(tmp_path, [_model(hung_url)], upstream=upstream) as url,
    ):
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": "smollm2", "messages": MESSAGES})
        assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
        assert time.monotonic() - started < 5


def test_affinity_keeps_a_session_on_one_upstream_and_spreads_sessions(tmp_path: Path) -> None:
    doubles = [ScriptedUpstreamDouble() for _ in range(3)]
    upstream = UpstreamSettings(health_check="off", affinity=True)
    with (
        scripted_upstream(doubles[0]) as a,
        scripted_upstream(doubles[1]) as b,
        scripted_upstream(doubles[2]) as c,
    ):
        models = [_model(a, b, c)]
        with front_gateway(tmp_path, models, upstream=upstream) as url:
            for _ in range(4):
                for session in ("alice", "bob", "carol", "dave", "erin", "frank"):
                    response = httpx.post(
                        f"{url}/v1/chat/completions",
                        json={"model": "smollm2", "messages": MESSAGES},
                        headers={"x-aihub-session": session},
                    )
                    assert response.status_code == 200
    homes: dict[str, set[int]] = {}
    for index, double in enumerate(doubles):
        for request in double.requests:
            homes.setdefault(request["user"], set()).add(index)
    assert all(len(upstreams) == 1 for upstreams in homes.values())  # each session stayed on one
    assert len({next(iter(u)) for u in homes.values()}) >= 2  # and sessions spread


def test_each_upstream_gets_its_own_key_which_is_never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SITE_A_KEY", "sk-site-a-secret")
    key_file = tmp_path / "site-b.key"
    key_file.write_text("sk-site-b-secret\n")
    first, second = ScriptedUpstreamDouble(mode="status", status=503), ScriptedUpstreamDouble()
    upstream = UpstreamSettings(health_check="off")
    caplog.set_level(logging.DEBUG)
    with scripted_upstream(first) as a, scripted_upstream(second) as b:
        model = {
            "id": "smollm2",
            "engine": "openai",
            "upstreams": [
                {"url": a, "model": REMOTE_MODEL, "api_key_env": "SITE_A_KEY"},
                {"url": b, "model": REMOTE_MODEL, "api_key_file": str(key_file)},
            ],
        }
        with front_gateway(tmp_path, [model], upstream=upstream) as url:
            # Ties go either way at random: ask until both were tried (a failed 503 is retried on the other).
            for _ in range(60):
                if first.authorizations and second.authorizations:
                    break
                httpx.post(f"{url}/v1/chat/completions", json={"model": "smollm2", "messages": MESSAGES})
            ready = httpx.get(f"{url}/ready").text
    assert set(first.authorizations) == {"Bearer sk-site-a-secret"}
    assert set(second.authorizations) == {"Bearer sk-site-b-secret"}
    assert "secret" not in caplog.text and "secret" not in ready


def test_members_join_and_leave_through_a_watched_folder(tmp_path: Path) -> None:
    members = tmp_path / "members"
    members.mkdir()
    doubles = [ScriptedUpstreamDouble(), ScriptedUpstreamDouble()]
    model = {"id": "smollm2", "engine": "openai", "upstreams_from": str(members)}
    upstream = UpstreamSettings(health_interval_s=0.2, watch_interval_s=0.1)
    with scripted_upstream(doubles[0]) as a, scripted_upstream(doubles[1]) as b:
        assert not list(members.iterdir())
        with front_gateway(tmp_path, [model], upstream=upstream) as url:
            assert httpx.get(f"{url}/ready").status_code == 503  # no member yet
            (members / ".a.tmp").write_text(f"{a}\n")
            (members / ".a.tmp").replace(members / "a.url")
            (members / "b.yaml").write_text(f"url: {b}\nmodel: {REMOTE_MODEL}\n")
            _wait_for(lambda: len(_ready(url)["models"]["smollm2"]["upstreams"]) == 2)
            assert httpx.get(f"{url}/ready").status_code == 200
            # One at a time, both members tie on outstanding requests and one is drawn at random: four
            # requests all went to one member in 1 run of 8. Until each has had one, 40 at most.
            for _ in range(40):
                assert (
                    httpx.post(
                        f"{url}/v1/chat/completions", json={"model": "smollm2", "messages": MESSAGES}
                    ).status_code
                    == 200
                )
                if doubles[0].requests and doubles[1].requests:
                    break
            assert {r["model"] for r in doubles[0].requests} == {"smollm2"}  # a bare URL: the served id
            assert {r["model"] for r in doubles[1].requests} == {REMOTE_MODEL}
            (members / "a.url").unlink()
            _wait_for(lambda: [u["url"] for u in _ready(url)["models"]["smollm2"]["upstreams"]] == [b])


def test_admin_api_adds_and_removes_members_with_an_admin_key_only(tmp_path: Path) -> None:
    double = ScriptedUpstreamDouble()
    gateway = GatewaySettings(api_keys=["sk-user"], admin_keys=["sk-admin"])
    upstream = UpstreamSettings(health_interval_s=0.2)
    with (
        scripted_upstream(double) as extra,
        front_gateway(tmp_path, [_model("http://127.0.0.1:9/v1")], upstream=upstream, gateway=gateway) as url,
    ):
        member = {"model": "smollm2", "url": extra, "upstream_model": REMOTE_MODEL}
        assert httpx.post(f"{url}/admin/upstreams", json=member).status_code == 401
        refused = httpx.post(
            f"{url}/admin/upstreams", json=member, headers={"authorization": "Bearer sk-user"}
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_admin"
        admin = {"authorization": "Bearer sk-admin"}
        added = httpx.post(f"{url}/admin/upstreams", json=member, headers=admin)
        assert added.status_code == 201
        bad = httpx.post(f"{url}/admin/upstreams", json={**member, "url": "ftp://x"}, headers=admin)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "url"
        _wait_for(lambda: _ready(url)["models"]["smollm2"]["ready"])
        user = {"authorization": "Bearer sk-user"}
        body = {"model": "smollm2", "messages": MESSAGES}
        assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=user).status_code == 200
        removed = httpx.delete(
            f"{url}/admin/upstreams",
            params={"model": "smollm2", "url": "http://127.0.0.1:9/v1"},
            headers=admin,
        )
        assert removed.status_code == 200
        assert [
            u["url"]
            for u in httpx.get(f"{url}/admin/upstreams", headers=admin).json()["smollm2"]["upstreams"]
        ] == [extra]


def test_a_federated_site_lists_its_models_under_a_prefix(tmp_path: Path) -> None:
    site = ScriptedUpstreamDouble(models=("llama-70b", "mistral-7b"))
    with scripted_upstream(site) as site_url:
        models = [{"id": "site-b/*", "engine": "openai", "upstreams": [{"url": site_url}]}]
        with front_gateway(tmp_path, models) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            assert {m.id for m in client.models.list()} >= {"site-b/llama-70b", "site-b/mistral-7b"}
            reply = client.chat.completions.create(model="site-b/mistral-7b", messages=MESSAGES)
            assert reply.model == "site-b/mistral-7b" and site.requests[-1]["model"] == "mistral-7b"
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="site-b/unknown", messages=MESSAGES)


def test_embeddings_can_be_served_by_an_upstream(tmp_path: Path) -> None:
    double = ScriptedUpstreamDouble()
    with scripted_upstream(double) as remote:
        embedder = {
            "id": "remote-embedder",
            "engine": "openai",
            "upstreams": [{"url": remote, "model": "e5"}],
            "options": {"dimensions": 3},
        }
        with front_gateway(tmp_path, [], embedders=[embedder]) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            result = client.embeddings.create(model="remote-embedder", input=["ab", "abcd"])
            assert [round(sum(v * v for v in item.embedding), 5) for item in result.data] == [1.0, 1.0]
            assert (
                result.data[1].embedding[0] > result.data[0].embedding[0]
            )  # longer text, by the double's rule
            assert double.requests[-1] == {"model": "e5", "input": ["ab", "abcd"]}
            assert result.usage.prompt_tokens == 2


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_least_outstanding_spreads_concurrent_requests(tmp_path: Path, slow_upstream: GatewayProcess) -> None:
    with fixed_latency_upstream(tmp_path / "second", ttft_s=0.01, itl_s=0.04, tokens=8) as second:
        urls = [slow_upstream.base_url + "/v1", second.base_url + "/v1"]
        with front_gateway(tmp_path, [_model(*urls)]) as url:
            body = {"model": "smollm2", "messages": MESSAGES, "max_tokens": 4}
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                statuses = list(
                    pool.map(
                        lambda _: httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code,
                        range(16),
                    )
                )
            assert statuses == [200] * 16
            counts = [u["requests"] for u in _ready(url)["models"]["smollm2"]["upstreams"]]
            assert sum(counts) == 16 and min(counts) >= 5


def test_a_client_that_leaves_stops_the_upstream_generation(tmp_path: Path) -> None:
    long = ScriptedUpstreamDouble(mode="long")
    upstream = UpstreamSettings(health_check="off")
    with scripted_upstream(long) as long_url:
        models = [_model(long_url)]
        with front_gateway(tmp_path, models, upstream=upstream) as url:
            body = {"model": "smollm2", "messages": MESSAGES, "stream": True}
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                lines = response.iter_lines()
                assert next(line for line in lines if line.startswith("data:"))
            # The client left after its first event: the gateway drops the upstream connection.
            _wait_for(long.disconnected.is_set, timeout_s=3)
            ready = _ready(url)["models"]["smollm2"]["upstreams"][0]
            assert ready["outstanding"] == 0 and ready["errors"] == 0  # leaving is not the upstream's fault


def test_bulk_embedding_from_synchronous_code_uses_the_upstream_too(tmp_path: Path) -> None:
    from core.model_config import ModelConfig
    from serving.settings import ServingSettings
    from serving.upstream.build import build_upstream_embedder

    double = ScriptedUpstreamDouble()
    with scripted_upstream(double) as remote:
        config = ModelConfig(id="e", engine="openai", upstreams=[{"url": remote}], options={"dimensions": 3})
        embedder = build_upstream_embedder(config, ServingSettings())
        vectors = embedder.embed_batch(["a", "abc"])
        assert vectors.shape == (2, 3) and vectors[1][0] > vectors[0][0]
        assert embedder.embed_batch(["ab"]).shape == (1, 3)  # a second private loop: fresh connections
