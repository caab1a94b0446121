"""Tenancy through the whole stack as ``aihub serve`` composes it: keys from the database and an OIDC
issuer decide who calls, scopes decide what they reach, and every request lands in the usage ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aihub.compose import build_services, open_store
from core.model_config import ModelConfig
from core.tenancy import Limits, Scopes
from gateway.app import create_app
from gateway.settings import GatewaySettings
from ray_cluster.config import AihubConfig
from tenancy.build import load_secret, open_database
from tenancy.keys import KeyStore
from tenancy.settings import LedgerSettings, OidcIssuerSettings, TenancySettings
from tenancy.usage_report import usage_report
from tests.support.server_thread import ServerThread

ISSUER = "https://idp.example/realms/hpc"
MODELS = ("double-a", "double-b")


@pytest.fixture
def keypair() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks_file(tmp_path: Path, private: rsa.RSAPrivateKey) -> Path:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return path


def _token(private: rsa.RSAPrivateKey, **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": "aihub", "sub": "alice", "exp": now + 300, "iat": now, **claims}
    return jwt.encode(payload, private, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def served(tmp_path: Path, keypair: rsa.RSAPrivateKey) -> Iterator[tuple[str, KeyStore, AihubConfig]]:
    tenancy = TenancySettings(
        enabled=True,
        oidc=(
            OidcIssuerSettings(
                issuer=ISSUER,
                audience="aihub",
                jwks_file=_jwks_file(tmp_path, keypair),
                project_claim="groups",
                project_prefix="/aihub/",
                models=("double-b",),
            ),
        ),
        ledger=LedgerSettings(flush_interval_s=0.05),
    )
    models = tuple(
        ModelConfig(id=m, engine="fixed-latency", options={"ttft_s": 0.0, "itl_s": 0.01, "tokens": 12})
        for m in MODELS
    )
    config = AihubConfig.build(
        tmp_path / "home",
        models,
        gateway=GatewaySettings(api_keys=["sk-plain"], model_aliases={"gpt-4o-mini": "double-a"}),
        tenancy=tenancy,
    )
    store = KeyStore(open_database(tenancy, config.app.home), load_secret(tenancy, config.app.home))
    app = create_app(config.gateway_settings(), build_services(config, open_store(config)))
    with ServerThread(app) as url:
        yield url, store, config


@pytest.fixture
def client_for() -> Iterator[object]:
    """OpenAI clients, closed at the end (their connections would otherwise outlive the test)."""
    clients: list[openai.OpenAI] = []

    def make(url: str, key: str) -> openai.OpenAI:
        clients.append(openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _report(config: AihubConfig, project: str, by: str = "model") -> dict[str, object]:
    database = open_database(config.tenancy, config.app.home)
    return {row.group: row for row in usage_report(database, project, by=by)}  # type: ignore[arg-type]


def test_keys_scope_models_and_endpoints_and_every_request_is_in_the_ledger(served, client_for) -> None:
    url, store, config = served
    scoped, _ = store.create("climate", scopes=Scopes(models=("double-a",), endpoints=("chat", "models")))
    client = client_for(url, scoped)
    # only what the key may call (the alias names the same model)
    assert sorted(m.id for m in client.models.list()) == ["double-a", "gpt-4o-mini"]
    with pytest.raises(openai.NotFoundError):  # out of scope: as if it did not exist
        client.chat.completions.create(model="double-b", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.PermissionDeniedError):
        client.completions.create(model="double-a", prompt="hi")

    seen_prompt = seen_completion = 0
    for max_tokens in (3, 5):
        reply = client.chat.completions.create(
            model="double-a", messages=[{"role": "user", "content": "one two"}], max_tokens=max_tokens
        )
        assert reply.usage is not None
        seen_prompt += reply.usage.prompt_tokens
        seen_completion += reply.usage.completion_tokens
    chunks = list(
        client.chat.completions.create(
            model="double-a",
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None
    seen_prompt += chunks[-1].usage.prompt_tokens
    seen_completion += chunks[-1].usage.completion_tokens

    # A client that leaves after three tokens: the ledger counts what was generated, flagged interrupted.
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json={"model": "double-a", "messages": [{"role": "user", "content": "x"}], "stream": True},
        headers={"authorization": f"Bearer {scoped}"},
    ) as response:
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
            if received == 3:
                break

    deadline = time.monotonic() + 5
    while (row := _report(config, "climate").get("double-a")) is None or row.requests < 4:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the rows did not reach the ledger"
        time.sleep(0.05)
    assert row.requests == 4 and row.streamed == 2 and row.interrupted == 1  # type: ignore[attr-defined]
    interrupted_tokens = row.completion_tokens - seen_completion  # type: ignore[attr-defined]
    assert 3 <= interrupted_tokens < 12  # what was generated before the client left, not the whole answer
    assert row.prompt_tokens == seen_prompt + 2  # type: ignore[attr-defined]  # "x" and the role marker
    assert "double-b" not in _report(config, "climate")  # the refused request generated nothing
    metrics = httpx.get(f"{url}/metrics").text
    assert 'aihub_project_requests_total{model="double-a",project="climate"} 4.0' in metrics
    assert scoped not in metrics


def test_revocation_is_seen_within_a_second_and_plain_keys_are_the_default_project(served) -> None:
    url, store, _ = served
    token, info = store.create("physics")
    body = {"model": "double-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    headers = {"authorization": f"Bearer {token}"}
    assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers).status_code == 200
    store.revoke(info.key_id)
    time.sleep(1.1)
    refused = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    plain = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-plain"})
    assert plain.status_code == 200
    for bad in ("", "Bearer", "Bearer sk-aihub-key_x-y", "Basic abc", "Bearer " + token[:-1] + "x"):
        response = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": bad})
        assert response.status_code == 401 and set(response.json()["error"]) == {
            "message",
            "type",
            "param",
            "code",
        }
        assert token not in response.text


def test_oidc_tokens_map_a_group_to_a_project_and_bad_ones_are_401(served, keypair, client_for) -> None:
    url, _, config = served
    good = _token(keypair, groups=["/other", "/aihub/astro"])
    client = client_for(url, good)
    reply = client.chat.completions.create(model="double-b", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    with pytest.raises(openai.NotFoundError):  # the issuer's scopes: double-b only
        client.chat.completions.create(model="double-a", messages=[{"role": "user", "content": "hi"}])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        _token(keypair, groups=["/aihub/astro"], exp=int(time.time()) - 3600),
        _token(keypair, groups=["/aihub/astro"], aud="someone-else"),
        _token(other, groups=["/aihub/astro"]),
        _token(keypair, groups=["/nothing"]),
    ):
        response = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {bad}"})
        assert response.status_code == 401
    deadline = time.monotonic() + 5
    while "double-b" not in _report(config, "astro"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_key_reads_its_own_projects_usage_only(served) -> None:
    url, store, _ = served
    mine, _ = store.create("climate")
    theirs, _ = store.create("physics")
    admin, _ = store.create("ops", admin=True)
    body = {"model": "double-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    for key in (mine, mine, theirs):
        assert httpx.post(
            f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        ).is_success
    deadline = time.monotonic() + 5
    while True:
        own = httpx.get(f"{url}/v1/usage", headers={"authorization": f"Bearer {mine}"}).json()
        if own["data"] and own["data"][0]["requests"] == 2:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert own["project"] == "climate" and own["data"][0]["completion_tokens"] == 4
    refused = httpx.get(
        f"{url}/v1/usage", params={"project": "physics"}, headers={"authorization": f"Bearer {mine}"}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_your_project"
    other = httpx.get(
        f"{url}/v1/usage", params={"project": "physics"}, headers={"authorization": f"Bearer {admin}"}
    )
    assert other.status_code == 200 and other.json()["data"][0]["requests"] == 1


def test_limits_answer_429_with_openai_headers(served) -> None:
    url, store, _ = served
    rpm_key, _ = store.create("limited", limits=Limits(rpm=3))
    body = {"model": "double-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    headers = {"authorization": f"Bearer {rpm_key}"}
    answers = [httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "3"
    assert answers[2].headers["x-ratelimit-remaining-requests"] == "0"
    refused = answers[3]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1 and "x-ratelimit-reset-requests" in refused.headers

    budget_key, _ = store.create("frugal", limits=Limits(token_budget=10, budget_period="day"))
    headers = {"authorization": f"Bearer {budget_key}"}
    spent = [httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers) for _ in range(6)]
    assert spent[0].status_code == 200
    assert spent[-1].status_code == 429 and spent[-1].json()["error"]["code"] == "insufficient_quota"


def test_an_alias_and_its_model_are_one_model_to_a_key_scope(served, client_for) -> None:
    """Listing and calling agree: a key scoped to a model reaches it by its aliases too, and a key scoped
    to an alias reaches only that alias (and lists it), never the models beside it."""
    url, store, _ = served
    hello = [{"role": "user", "content": "hi"}]
    by_model, _ = store.create("climate", scopes=Scopes(models=("double-a",)))
    client = client_for(url, by_model)
    assert sorted(m.id for m in client.models.list()) == ["double-a", "gpt-4o-mini"]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=hello, max_tokens=2).model
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"

    by_alias, _ = store.create("climate", scopes=Scopes(models=("gpt-*",)))
    client = client_for(url, by_alias)
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=hello, max_tokens=2).model
    for outside in ("double-a", "double-b"):
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=outside, messages=hello, max_tokens=2)


# --- the Authorization header, fuzzed through the whole app -------------------------------------------


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    tenancy = TenancySettings(enabled=True, ledger=LedgerSettings(flush_interval_s=0.05))
    model = ModelConfig(id="double-a", engine="fixed-latency", options={"ttft_s": 0.0, "tokens": 2})
    config = AihubConfig.build(home, (model,), tenancy=tenancy)
    key, _ = KeyStore(open_database(tenancy, config.app.home), load_secret(tenancy, config.app.home)).create(
        "climate"
    )
    app = create_app(config.gateway_settings(), build_services(config, open_store(config)))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, key


# Header bytes a client can send: anything but CR, LF and NUL (which HTTP itself forbids).
header_bytes = st.binary(max_size=300).map(lambda b: bytes(c for c in b if c not in b"\r\n\0"))


def _near_misses(key: str) -> st.SearchStrategy[bytes]:
    """Edits of the real key: each must fail like any other wrong key."""
    raw = key.encode()
    return st.one_of(
        st.integers(0, len(raw) - 1).map(lambda n: raw[:n]),
        # (trailing spaces and tabs are HTTP's optional whitespace, not part of the value)
        st.binary(min_size=1, max_size=8).filter(lambda b: b.strip(b" \t")).map(lambda extra: raw + extra),
        st.integers(0, len(raw) - 1).map(lambda i: raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :]),
        st.just(raw.upper()),
    ).map(lambda token: b"Bearer " + token)


def _wrong_key_body(client: TestClient) -> str:
    response = client.post(
        "/v1/chat/completions",
        json={"model": "double-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers={"authorization": "Bearer sk-wrong-wrong-wrong"},
    )
    assert response.status_code == 401
    return response.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_malformed_or_wrong_authorization_is_a_clean_401(fuzz_target, data) -> None:
    client, key = fuzz_target
    value = data.draw(
        st.one_of(
            header_bytes,
            header_bytes.map(lambda b: b"Bearer " + b),
            header_bytes.map(lambda b: b"bearer  " + b + b" "),
            st.sampled_from([b"", b"Bearer", b"Bearer ", b"Basic dXNlcjpwYXNz", b"Bearer \t"]),
            _near_misses(key),
        )
    )
    response = client.post(
        "/v1/chat/completions",
        json={"model": "double-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers={"authorization": value},
    )
    assert response.status_code == 401, (value, response.text)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    secret_part = value.partition(b" ")[2].strip().decode("latin-1")
    # What the client sent is never echoed back; text that is in every 401 body anyway (hypothesis
    # found ' {"error"') proves nothing either way.
    if len(secret_part) >= 8 and secret_part not in _wrong_key_body(client):
        assert secret_part not in response.text


def test_the_real_key_passes_the_same_door(fuzz_target) -> None:
    client, key = fuzz_target
    response = client.post(
        "/v1/chat/completions",
        json={"model": "double-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text


def test_the_consoles_data_is_an_endpoint_family_of_its_own(served) -> None:
    url, store, _ = served
    chat_only, _ = store.create("climate", scopes=Scopes(endpoints=("chat",)))
    console, _ = store.create("climate", scopes=Scopes(endpoints=("console",)))
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/ui/").status_code == 200  # the page holds no data: open
        assert http.get("/ui/api/artifacts").status_code == 401
        denied = http.get("/ui/api/artifacts", headers={"Authorization": f"Bearer {chat_only}"})
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"]["code"] == "endpoint_not_allowed"
        allowed = http.get("/ui/api/artifacts", headers={"Authorization": f"Bearer {console}"})
        assert allowed.status_code == 200, allowed.text
