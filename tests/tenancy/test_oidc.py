"""OIDC bearer JWTs: key pairs made here, tokens signed with PyJWT (or by hand for the attacks), the JWKS
served from a file or from a real HTTP server on 127.0.0.1 that counts its fetches."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from core.tenancy import Principal, Scopes
from tenancy.jwks import parse_jwks
from tenancy.oidc import OidcAuthenticator
from tenancy.settings import OidcIssuerSettings

ISSUER = "https://idp.test/realms/hpc"
AUDIENCE = "aihub"


# --- keys, tokens, JWKS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key: Any, kid: str | None, alg: str | None = None) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk["use"] = "sig"
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "project": "climate",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(private_key: Any, kid: str | None = "rsa-1", alg: str = "RS256", **overrides: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**overrides), private_key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(signature)}"


def write_jwks(path: Path, *jwks: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"keys": list(jwks)}))
    return path


class FakeClock:
    """The monotonic clock of the JWKS cache, moved by hand (token times stay on the wall clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 (http.server in a thread) that counts GETs; ``status`` and ``body``
    may be changed between requests."""

    def __init__(self) -> None:
        self.jwks: list[dict[str, Any]] = []
        self.fetches = 0
        self.status = 200
        self.body: bytes | None = None  # overrides the JSON of ``jwks``
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state.fetches += 1
                body = state.body if state.body is not None else json.dumps({"keys": state.jwks}).encode()
                self.send_response(state.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/realms/hpc/protocol/openid-connect/certs"
        self.thread = threading.Thread(
            target=lambda: self.httpd.serve_forever(poll_interval=0.05), daemon=True
        )


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


def issuer(**overrides: Any) -> OidcIssuerSettings:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "leeway_s": 5.0}
    values.update(overrides)
    return OidcIssuerSettings(**values)


@pytest.fixture
def file_auth(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> OidcAuthenticator:
    path = write_jwks(
        tmp_path / "jwks.json", public_jwk(rsa_key, "rsa-1", "RS256"), public_jwk(ec_key, "ec-1")
    )
    return OidcAuthenticator([issuer(jwks_file=path, models=("smollm2-*",), endpoints=("chat",))])


# --- accepted -----------------------------------------------------------------------------------------


async def test_valid_rsa_token_from_a_file(file_auth: OidcAuthenticator, rsa_key: rsa.RSAPrivateKey) -> None:
    principal = await file_auth.authenticate(sign(rsa_key))
    assert principal == Principal(
        project="climate",
        key_id=f"oidc:{ISSUER}#alice",
        scopes=Scopes(models=("smollm2-*",), endpoints=("chat",)),
    )
    assert file_auth.jwks(ISSUER).loads == 1
    assert await file_auth.authenticate(sign(rsa_key, sub="bob")) is not None
    assert file_auth.jwks(ISSUER).loads == 1  # cached


async def test_valid_ec_token_from_a_url(jwks_server: JwksServer, ec_key: ec.EllipticCurvePrivateKey) -> None:
    jwks_server.jwks = [public_jwk(ec_key, "ec-1", "ES256")]
    auth = OidcAuthenticator([issuer(jwks_url=jwks_server.url)])
    for _ in range(3):
        principal = await auth.authenticate(sign(ec_key, kid="ec-1", alg="ES256"))
        assert principal is not None and principal.project == "climate"
    assert jwks_server.fetches == 1


async def test_keycloak_groups_with_a_prefix_and_an_audience_list(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(rsa_key, "rsa-1"))
    auth = OidcAuthenticator([issuer(jwks_file=path, project_claim="groups", project_prefix="/aihub/")])
    groups = ["/staff", "/aihub/a/b", "/aihub/", "/aihub/climate", "/aihub/ocean"]
    token = sign(rsa_key, aud=["account", AUDIENCE], groups=groups, project=None)
    principal = await auth.authenticate(token)
    assert principal is not None and principal.project == "climate"  # the first plain name with the prefix
    assert await auth.authenticate(sign(rsa_key, groups=["/staff", "/other/climate"], project=None)) is None
    assert await auth.authenticate(sign(rsa_key, groups="/aihub/solo", project=None)) is not None


async def test_nested_claim_and_token_without_kid(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(rsa_key, None))
    auth = OidcAuthenticator(
        [issuer(jwks_file=path, project_claim="realm_access.roles", project_prefix="p-")]
    )
    principal = await auth.authenticate(sign(rsa_key, kid=None, realm_access={"roles": ["offline", "p-bio"]}))
    assert principal is not None and principal.project == "bio"


async def test_two_issuers_each_with_its_own_keys(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    other = "https://proxy.myaccessid.test/"
    auth = OidcAuthenticator(
        [
            issuer(jwks_file=write_jwks(tmp_path / "a.json", public_jwk(rsa_key, "k"))),
            issuer(
                issuer=other,
                jwks_file=write_jwks(tmp_path / "b.json", public_jwk(ec_key, "k")),
                algorithms=("ES256",),
            ),
        ]
    )
    assert (await auth.authenticate(sign(rsa_key, kid="k"))) is not None
    principal = await auth.authenticate(sign(ec_key, kid="k", alg="ES256", iss=other))
    assert principal is not None and principal.key_id == f"oidc:{other}#alice"
    # A token naming one issuer and signed by the other's key.
    assert await auth.authenticate(sign(rsa_key, kid="k", iss=other)) is None
    assert await auth.authenticate(sign(ec_key, kid="k", alg="ES256")) is None


# --- rejected: each case is None, the gateway's 401 ---------------------------------------------------


@dataclass(frozen=True)
class FromNow:
    """A token time relative to when the test runs: parameters are built at collection, which in a
    full run can be half an hour before the test itself."""

    seconds: int

    def resolve(self) -> int:
        return int(time.time()) + self.seconds


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": FromNow(-120)}, id="expired"),
        pytest.param({"nbf": FromNow(120)}, id="not-yet-valid"),
        pytest.param({"aud": "someone-else"}, id="wrong-audience"),
        pytest.param({"aud": ["account", "broker"]}, id="wrong-audience-list"),
        pytest.param({"aud": None}, id="no-audience"),
        pytest.param({"iss": "https://evil.test/realms/hpc"}, id="wrong-issuer"),
        pytest.param({"iss": ISSUER + "/"}, id="issuer-almost"),
        pytest.param({"exp": None}, id="no-exp"),
        pytest.param({"sub": None}, id="no-sub"),
        pytest.param({"sub": ""}, id="empty-sub"),
        pytest.param({"project": None}, id="no-project"),
        pytest.param({"project": ""}, id="empty-project"),
        pytest.param({"project": "../etc"}, id="project-not-a-name"),
        pytest.param({"project": 42}, id="project-not-a-string"),
    ],
)
async def test_invalid_claims_are_rejected(
    file_auth: OidcAuthenticator, rsa_key: rsa.RSAPrivateKey, overrides: dict[str, Any]
) -> None:
    resolved: dict[str, Any] = {k: v.resolve() if isinstance(v, FromNow) else v for k, v in overrides.items()}
    assert await file_auth.authenticate(sign(rsa_key, **resolved)) is None


async def test_leeway_allows_small_clock_skew(
    file_auth: OidcAuthenticator, rsa_key: rsa.RSAPrivateKey
) -> None:
    # leeway_s=5 in these settings
    assert await file_auth.authenticate(sign(rsa_key, exp=int(time.time()) - 2)) is not None
    assert await file_auth.authenticate(sign(rsa_key, nbf=int(time.time()) + 2)) is not None


async def test_wrong_signature_same_kid(
    file_auth: OidcAuthenticator, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    assert await file_auth.authenticate(sign(other_rsa_key, kid="rsa-1")) is None


async def test_tampered_payload(file_auth: OidcAuthenticator, rsa_key: rsa.RSAPrivateKey) -> None:
    header, _, signature = sign(rsa_key).split(".")
    forged = b64(json.dumps(claims(project="admin")).encode())
    assert await file_auth.authenticate(f"{header}.{forged}.{signature}") is None


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
@pytest.mark.parametrize("signature", [b"", b"\x00" * 32])
async def test_alg_none(file_auth: OidcAuthenticator, alg: str, signature: bytes) -> None:
    token = handmade({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims(), signature)
    assert await file_auth.authenticate(token) is None


async def test_hs256_signed_with_the_public_key(
    file_auth: OidcAuthenticator, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The classic confusion attack: the public key (PEM, or the JWK's modulus) used as an HMAC secret."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, pem.strip(), public_jwk(rsa_key, None)["n"].encode()):
        header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
        unsigned = handmade(header, claims()).rsplit(".", 1)[0]
        mac = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
        assert await file_auth.authenticate(f"{unsigned}.{b64(mac)}") is None


async def test_symmetric_key_in_the_jwks_is_ignored(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    secret = b"s" * 32
    oct_jwk = {"kty": "oct", "kid": "hmac", "k": b64(secret), "alg": "HS256"}
    auth = OidcAuthenticator(
        [issuer(jwks_file=write_jwks(tmp_path / "j.json", oct_jwk, public_jwk(rsa_key, "r")))]
    )
    token = jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "hmac"})
    assert await auth.authenticate(token) is None


def test_jwks_keeps_public_signing_keys_only(rsa_key: rsa.RSAPrivateKey) -> None:
    private = RSAAlgorithm.to_jwk(rsa_key, as_dict=True) | {"kid": "leaked"}
    document = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": b64(b"s" * 32)},
            public_jwk(rsa_key, "enc") | {"use": "enc"},
            public_jwk(rsa_key, "sig"),
            private,
            {"kty": "RSA", "kid": 7},
            "junk",
        ]
    }
    keys = parse_jwks(json.dumps(document).encode())
    assert set(keys) == {"sig", "leaked"}
    assert "d" not in keys["leaked"] and "p" not in keys["leaked"]
    for bad in (b"[]", b'{"keys": {}}', b'{"keys": [{"kty": "oct", "k": "AA"}]}', b"\xff"):
        with pytest.raises(ValueError):
            parse_jwks(bad)


async def test_algorithm_must_fit_the_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    path = write_jwks(
        tmp_path / "jwks.json", public_jwk(rsa_key, "rsa-1", "RS256"), public_jwk(ec_key, "ec-1")
    )
    auth = OidcAuthenticator([issuer(jwks_file=path, algorithms=("RS256", "PS256", "ES256", "ES384"))])
    assert await auth.authenticate(sign(rsa_key, kid="rsa-1", alg="PS256")) is None  # the JWK says RS256
    assert await auth.authenticate(sign(rsa_key, kid="ec-1", alg="RS256")) is None  # an RSA alg on an EC key
    header = {"alg": "ES384", "kid": "ec-1"}  # a P-256 key cannot verify ES384
    assert await auth.authenticate(handmade(header, claims(), b"\x01" * 96)) is None
    assert await auth.authenticate(sign(ec_key, kid="ec-1", alg="ES256")) is not None


async def test_algorithm_not_configured_for_the_issuer(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(rsa_key, "rsa-1"))
    auth = OidcAuthenticator([issuer(jwks_file=path, algorithms=("ES256",))])
    assert await auth.authenticate(sign(rsa_key)) is None


def test_settings_refuse_symmetric_and_none_algorithms(tmp_path: Path) -> None:
    for algorithms in (("HS256",), ("RS256", "none"), ("hs512",), ()):
        with pytest.raises(ValidationError):
            issuer(jwks_file=tmp_path / "j.json", algorithms=algorithms)
    with pytest.raises(ValidationError):
        issuer()  # neither a URL nor a file
    with pytest.raises(ValidationError):
        issuer(jwks_file=tmp_path / "j.json", jwks_url="http://127.0.0.1:1/certs")
    with pytest.raises(ValueError, match="unsupported"):
        OidcAuthenticator([issuer(jwks_file=tmp_path / "j.json", algorithms=("RS1",))])
    with pytest.raises(ValueError, match="twice"):
        OidcAuthenticator([issuer(jwks_file=tmp_path / "j.json")] * 2)


# --- the JWKS: unknown kids, rotation, failures -------------------------------------------------------


async def test_unknown_kid_refreshes_at_most_once_per_window(
    jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.jwks = [public_jwk(rsa_key, "rsa-1")]
    clock = FakeClock()
    auth = OidcAuthenticator([issuer(jwks_url=jwks_server.url, jwks_min_refresh_s=10.0)], clock=clock)
    assert await auth.authenticate(sign(rsa_key)) is not None
    assert jwks_server.fetches == 1

    clock.advance(11)
    assert await auth.authenticate(sign(rsa_key, kid="nope")) is None
    assert jwks_server.fetches == 2  # one refresh, the kid still unknown
    for i in range(50):  # a flood of made-up kids, in sequence and at once
        assert await auth.authenticate(sign(rsa_key, kid=f"flood-{i}")) is None
    results = await asyncio.gather(*(auth.authenticate(sign(rsa_key, kid=f"burst-{i}")) for i in range(50)))
    assert results == [None] * 50
    assert jwks_server.fetches == 2
    assert await auth.authenticate(sign(rsa_key)) is not None  # known keys still work meanwhile

    clock.advance(10)
    results = await asyncio.gather(*(auth.authenticate(sign(rsa_key, kid=f"again-{i}")) for i in range(20)))
    assert results == [None] * 20
    assert jwks_server.fetches == 3  # the concurrent burst shared one fetch


async def test_key_rotation_from_a_url(
    jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.jwks = [public_jwk(rsa_key, "2024")]
    clock = FakeClock()
    auth = OidcAuthenticator([issuer(jwks_url=jwks_server.url)], clock=clock)
    assert await auth.authenticate(sign(rsa_key, kid="2024")) is not None

    jwks_server.jwks = [public_jwk(rsa_key, "2024"), public_jwk(other_rsa_key, "2025")]
    clock.advance(3)  # inside the refresh window: the new key is not fetched yet
    assert await auth.authenticate(sign(other_rsa_key, kid="2025")) is None
    clock.advance(10)
    principal = await auth.authenticate(sign(other_rsa_key, kid="2025"))
    assert principal is not None and principal.project == "climate"
    assert jwks_server.fetches == 2

    jwks_server.jwks = [public_jwk(other_rsa_key, "2025")]  # the old key retired
    clock.advance(301)  # past jwks_cache_s: the next token reloads the set
    assert await auth.authenticate(sign(rsa_key, kid="2024")) is None
    assert await auth.authenticate(sign(other_rsa_key, kid="2025")) is not None
    assert jwks_server.fetches == 3


async def test_key_rotation_from_a_file(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(rsa_key, "rsa-1"))
    clock = FakeClock()
    auth = OidcAuthenticator([issuer(jwks_file=path)], clock=clock)
    assert await auth.authenticate(sign(rsa_key)) is not None
    write_jwks(path, public_jwk(rsa_key, "rsa-1"), public_jwk(ec_key, "ec-1"))
    clock.advance(10)
    assert await auth.authenticate(sign(ec_key, kid="ec-1", alg="ES256")) is not None
    assert auth.jwks(ISSUER).loads == 2


async def test_idp_down_keeps_the_known_keys(jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks_server.jwks = [public_jwk(rsa_key, "rsa-1")]
    clock = FakeClock()
    auth = OidcAuthenticator([issuer(jwks_url=jwks_server.url)], clock=clock)
    assert await auth.authenticate(sign(rsa_key)) is not None
    for failure in (500, "not json", "huge", "empty"):
        jwks_server.status, jwks_server.body = 200, None
        if failure == 500:
            jwks_server.status = 500
        elif failure == "not json":
            jwks_server.body = b"<html>maintenance</html>"
        elif failure == "huge":
            jwks_server.body = json.dumps({"keys": [], "pad": "x" * (2 << 20)}).encode()
        else:
            jwks_server.body = b'{"keys": []}'
        clock.advance(400)  # the cache is stale: a refresh is tried and fails
        before = jwks_server.fetches
        assert await auth.authenticate(sign(rsa_key)) is not None, failure
        assert await auth.authenticate(sign(rsa_key, kid="new")) is None, failure
        assert jwks_server.fetches == before + 1, failure


async def test_idp_unreachable_from_the_start(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        url = f"http://127.0.0.1:{closed.server_address[1]}/certs"  # bound, then closed: nothing listens
    auth = OidcAuthenticator([issuer(jwks_url=url)])
    assert await auth.authenticate(sign(rsa_key)) is None
    missing = OidcAuthenticator([issuer(jwks_file=tmp_path / "absent.json")])
    assert await missing.authenticate(sign(rsa_key)) is None


# --- garbage, logs ------------------------------------------------------------------------------------


async def test_api_keys_and_garbage_are_turned_away_cheaply(file_auth: OidcAuthenticator) -> None:
    for token in ("sk-aihub-0123456789abcdef", "", "a.b", "a.b.c.d", "x" * 20_000, "a..c", "é.b.c", "a.b.c "):
        assert await file_auth.authenticate(token) is None
    assert file_auth.jwks(ISSUER).loads == 0  # nothing was even worth loading the keys for


async def test_rejections_never_log_the_token(
    file_auth: OidcAuthenticator,
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tenancy")
    tokens = [
        sign(rsa_key, exp=int(time.time()) - 999),
        sign(rsa_key, aud="x"),
        sign(other_rsa_key),
        sign(rsa_key, kid="unknown"),
        sign(rsa_key, project=None),
        handmade({"alg": "none", "kid": "rsa-1"}, claims(), b"a forged signature"),
        sign(rsa_key, iss="https://evil.test/"),
    ]
    for token in tokens:
        assert await file_auth.authenticate(token) is None
    assert len([r for r in caplog.records if r.name == "tenancy.oidc"]) == len(tokens)
    for token in tokens:
        for segment in token.split("."):
            assert segment not in caplog.text
    assert "evil.test" not in caplog.text  # the caller's own values are not echoed either


@pytest.fixture(scope="module")
def fuzz_auth(tmp_path_factory: pytest.TempPathFactory, rsa_key: rsa.RSAPrivateKey) -> OidcAuthenticator:
    path = write_jwks(tmp_path_factory.mktemp("fuzz") / "jwks.json", public_jwk(rsa_key, "rsa-1"))
    return OidcAuthenticator([issuer(jwks_file=path, project_claim="groups", project_prefix="/aihub/")])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "ES256", "none", "HS256", "PS256"]) | json_values,
        "kid": st.just("rsa-1") | json_values,
        "crit": json_values,
        "b64": json_values,
    },
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.just(ISSUER) | json_values,
        "aud": st.just(AUDIENCE) | json_values,
        "exp": st.integers() | json_values,
        "nbf": st.integers() | json_values,
        "sub": json_values,
        "groups": json_values,
    },
)
segments = st.from_regex(r"[A-Za-z0-9_-]{1,60}", fullmatch=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.text(max_size=200)
    | st.builds(lambda a, b, c: f"{a}.{b}.{c}", segments, segments, segments)
    | st.builds(lambda h, p, s: handmade(h, p, s), headers, payloads, st.binary(max_size=300))
)
def test_garbage_never_raises(fuzz_auth: OidcAuthenticator, token: str) -> None:
    assert asyncio.run(fuzz_auth.authenticate(token)) is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=payloads)
def test_signed_tokens_with_odd_claims_never_raise(
    fuzz_auth: OidcAuthenticator, rsa_key: rsa.RSAPrivateKey, extra: dict[str, Any]
) -> None:
    """Validly signed tokens whose claims are of every odd type: a Principal only when all of them fit."""
    # Signed by hand: PyJWT's encode refuses some of these claim types itself.
    header = {"alg": "RS256", "kid": "rsa-1"}
    payload = {**claims(project=None, groups=["/aihub/climate"]), **extra}
    unsigned = handmade(header, payload).rsplit(".", 1)[0]
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(unsigned.encode(), rsa_key)
    principal = asyncio.run(fuzz_auth.authenticate(f"{unsigned}.{b64(signature)}"))
    if not extra:
        assert principal is not None and principal.project == "climate"
    if principal is not None:
        assert extra.get("iss", ISSUER) == ISSUER
        assert principal.project == "climate" or "groups" in extra
