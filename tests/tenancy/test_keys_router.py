"""``/admin/keys`` on a real app (``gateway.app.create_app``) with a real key store on SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.routers import keys as keys_router
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from tenancy.database import Database
from tenancy.key_authenticator import KeyAuthenticator
from tenancy.keys import KeyStore, parse_token

ADMIN = {"authorization": "Bearer sk-admin"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    database = Database(f"sqlite:///{tmp_path / 'tenancy.db'}")
    yield KeyStore(database, b"x" * 32)
    database.close()


def _app(settings: GatewaySettings, services: GatewayServices) -> FastAPI:
    app = create_app(settings, services)
    if not any(getattr(route, "path", None) == "/admin/keys" for route in app.routes):
        app.include_router(keys_router.router)  # until gateway/app.py includes it
    return app


@pytest.fixture
def client(store: KeyStore) -> Iterator[TestClient]:
    """Tenancy's authenticator off: the admin routes check ``gateway.admin_keys`` themselves."""
    app = _app(GatewaySettings(admin_keys=["sk-admin"]), GatewayServices(key_manager=store))
    with TestClient(app) as test_client:
        yield test_client


def test_create_list_show_revoke_over_http(client: TestClient) -> None:
    body = {
        "project": "climate",
        "models": ["rag/p-*", "smollm2-*"],
        "endpoints": "chat,embeddings",
        "rpm": 60,
        "token_budget": 1000,
        "budget_period": "month",
        "expires_at": "2999-01-01",
        "label": "ci bot",
    }
    created = client.post("/admin/keys", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    key = created.json()
    token, key_id = key["key"], key["id"]
    assert parse_token(token) == key_id
    assert key["models"] == ["rag/p-*", "smollm2-*"] and key["endpoints"] == ["chat", "embeddings"]
    assert (key["rpm"], key["token_budget"], key["budget_period"]) == (60, 1000, "month")
    assert key["expires_at"] == 32472144000 and key["status"] == "active" and key["admin"] is False
    secret = token.removeprefix(f"sk-aihub-{key_id}-")

    listed = client.get("/admin/keys", headers=ADMIN)
    assert listed.status_code == 200 and [k["id"] for k in listed.json()["data"]] == [key_id]
    assert client.get("/admin/keys", params={"project": "other"}, headers=ADMIN).json()["data"] == []
    shown = client.get(f"/admin/keys/{key_id}", headers=ADMIN)
    assert shown.status_code == 200 and "key" not in shown.json()
    for response in (listed, shown):
        assert secret not in response.text

    revoked = client.delete(f"/admin/keys/{key_id}", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert client.get(f"/admin/keys/{key_id}", headers=ADMIN).json()["revoked_at"] is not None
    for method in ("get", "delete"):
        missing = client.request(method, f"/admin/keys/{token}", headers=ADMIN)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "key_not_found"
        assert secret not in missing.text  # a token pasted into the path is not echoed


def test_only_admins_reach_it(client: TestClient) -> None:
    assert client.get("/admin/keys").status_code == 401
    refused = client.get("/admin/keys", headers={"authorization": "Bearer sk-user"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_admin"
    assert client.post("/admin/keys", json={"project": "p"}).status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"project": "p", "rmp": 5}, "rmp"),  # a misspelt limit is refused, not dropped
        ({"project": "p", "rpm": 0}, "rpm"),
        ({"project": "has space"}, "project"),
        ({"project": "p", "endpoints": ["chat", "teleport"]}, "endpoints"),
        ({"project": "p", "expires_at": "2001-01-01"}, "expires_at"),
        ({"project": "p", "budget_period": "week"}, "budget_period"),
    ],
)
def test_invalid_bodies_are_400s(client: TestClient, body: dict, param: str) -> None:
    response = client.post("/admin/keys", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert param in (response.json()["error"]["param"] or "") + response.json()["error"]["message"]


def test_without_tenancy_the_routes_say_so(store: KeyStore) -> None:
    app = _app(GatewaySettings(admin_keys=["sk-admin"]), GatewayServices())
    with TestClient(app) as client:
        off = client.get("/admin/keys", headers=ADMIN)
        assert off.status_code == 404 and off.json()["error"]["code"] == "tenancy_off"
    app = _app(GatewaySettings(), GatewayServices(key_manager=store))
    with TestClient(app) as client:
        off = client.get("/admin/keys", headers=ADMIN)
        assert off.status_code == 403 and "admin API is off" in off.json()["error"]["message"]


def test_with_tenancy_an_admin_key_from_the_database_manages_keys(store: KeyStore) -> None:
    admin_token, _ = store.create("ops", admin=True)
    user_token, _ = store.create("climate")
    authenticator = KeyAuthenticator(store, cache_s=0.2)
    services = GatewayServices(key_manager=store, authenticator=authenticator)
    with TestClient(_app(GatewaySettings(), services)) as client:
        admin = {"authorization": f"Bearer {admin_token}"}
        user = {"authorization": f"Bearer {user_token}"}
        assert client.get("/admin/keys", headers=user).status_code == 403
        created = client.post("/admin/keys", json={"project": "climate"}, headers=admin)
        assert created.status_code == 201
        new = {"authorization": f"Bearer {created.json()['key']}"}
        assert client.get("/v1/models", headers=new).status_code == 200  # the new key works at once
        assert client.delete(f"/admin/keys/{created.json()['id']}", headers=admin).status_code == 200
        deadline = time.monotonic() + 1.0
        while client.get("/v1/models", headers=new).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key still passes after a second"
            time.sleep(0.05)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.binary(max_size=300).filter(lambda raw: not set(raw) & {0, 10, 13}))
def test_fuzzed_authorization_headers_are_refused_cleanly(client: TestClient, value: bytes) -> None:
    response = client.get("/admin/keys", headers=[(b"authorization", value)])
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in ("invalid_api_key", "not_admin")
