"""An OCI distribution registry, through the ``oras`` SDK's client (its session, auth and blob upload).

Manifests are sent as exact bytes (so the digest at both ends is the same), and the referrers
tag-schema fallback (an image index at tag ``sha256-<hex>``) is kept where the registry lacks the API."""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from core.errors import ArtifactNotFoundError, AuthenticationError, InvalidReferenceError, RegistryError
from core.refs import ArtifactRef
from hub.digests import BUFFER_SIZE, digest_bytes, hex_of
from hub.media_types import OCI_INDEX, OCI_MANIFEST
from hub.registry_body import ChunkReader, read_capped, read_json_capped

logger = logging.getLogger(__name__)

_REMOTE_RE = re.compile(r"^oci://(?P<host>[A-Za-z0-9.-]+(?::\d+)?|\[[0-9a-fA-F:]+\](?::\d+)?)/(?P<rest>.+)$")
_LOOPBACK = ("127.", "localhost", "[::1]")
_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX])


@dataclass(frozen=True)
class RemoteRef:
    host: str
    ref: ArtifactRef  # repository path with tag or digest

    @classmethod
    def parse(cls, text: str) -> RemoteRef:
        match = _REMOTE_RE.match(text)
        if not match:
            raise InvalidReferenceError(
                f"invalid registry reference {text!r}: expected oci://HOST[:PORT]/REPO:TAG"
            )
        return cls(match["host"], ArtifactRef.parse(match["rest"]))

    @property
    def repository(self) -> str:
        return self.ref.name

    def __str__(self) -> str:
        return f"oci://{self.host}/{self.ref}"


def docker_config_auth(config_path: Path, host: str) -> tuple[str, str] | None:
    """Credentials for ``host`` from a Docker client config's ``auths`` (base64 "user:password")."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    for key in (host, f"http://{host}", f"https://{host}"):
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
    return None


class RegistryClient:
    def __init__(
        self,
        host: str,
        *,
        plain_http: bool | None = None,
        username: str | None = None,
        password: str | None = None,
        docker_config: Path | None = None,
        timeout_s: float = 30.0,
        ca_cert: Path | None = None,
    ) -> None:
        import oras.provider

        self.host = host
        self.plain_http = host.startswith(_LOOPBACK) if plain_http is None else plain_http
        self.scheme = "http" if self.plain_http else "https"
        self.timeout_s = timeout_s
        # requests' ``verify``: True (the system CAs) or a CA bundle's path; never False.
        self.verify: bool | str = True
        if ca_cert is not None and not self.plain_http:
            if not ca_cert.is_file():
                raise RegistryError(f"CA bundle {ca_cert} (--ca-cert / AIHUB_CA_CERT) is not a readable file")
            self.verify = str(ca_cert)
        if username is None and docker_config is not None:
            found = docker_config_auth(docker_config, host)
            if found:
                username, password = found
        self.username, self._password = username, password
        backend = self._probe()
        self.oras = oras.provider.Registry(
            hostname=host, insecure=self.plain_http, auth_backend=backend, tls_verify=self.verify
        )
        # oras passes ``verify`` on its own requests; the session default covers its token-auth calls too.
        self.oras.session.verify = self.verify
        if username is not None:
            self.oras.auth.set_basic_auth(username, password or "")
            if backend == "basic":
                # Sent up front: otherwise every request is answered 401 first and sent again.
                self.oras.set_header("Authorization", f"Basic {self._basic()}")

    def _basic(self) -> str:
        return base64.b64encode(f"{self.username}:{self._password or ''}".encode()).decode()

    def _probe(self) -> str:
        """GET /v2/ once, without retries: a missing registry or wrong credentials fail fast and clearly."""
        url = f"{self.scheme}://{self.host}/v2/"
        try:
            response = requests.get(url, timeout=min(self.timeout_s, 10), verify=self.verify)
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code != 401:
                response.raise_for_status()
                return "basic"
            if self.username is None:
                raise AuthenticationError(
                    f"registry {self.host} needs credentials: pass --username/--password or use docker login"
                )
            if challenge.lower().startswith("bearer"):
                return "token"
            checked = requests.get(
                url,
                timeout=min(self.timeout_s, 10),
                headers={"Authorization": f"Basic {self._basic()}"},
                verify=self.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryError(self._tls_failure(exc)) from None
        except requests.exceptions.ConnectionError:
            raise RegistryError(f"cannot reach registry {self.host} ({url})") from None
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"registry {self.host} answered {url} with an error: {exc}") from None
        if checked.status_code in (401, 403):
            raise AuthenticationError(
                f"registry {self.host} refused the credentials of user {self.username!r}"
            )
        return "basic"

    def _tls_failure(self, exc: requests.exceptions.SSLError) -> str:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            trusted = f"the CA bundle {self.verify}" if isinstance(self.verify, str) else "the system CAs"
            return (
                f"TLS to registry {self.host} failed: its certificate is not trusted by {trusted}; "
                "pass --ca-cert PATH with the CA that signed it"
            )
        return f"TLS to registry {self.host} failed; for a plain-HTTP registry pass --plain-http"

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {**self.oras.headers, **kwargs.get("headers", {})}
        try:
            return self.oras.do_request(url, method, **kwargs)
        except (requests.exceptions.RequestException, ValueError) as exc:
            raise RegistryError(f"registry {self.host}: {method} {url} failed: {exc}") from None

    def _url(self, repository: str, kind: str, ref: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{repository}/{kind}/{ref}"

    # --- manifests -------------------------------------------------------------------------------

    def get_manifest(self, repository: str, ref: str) -> tuple[bytes, str]:
        """(bytes, digest); a digest reference is checked against the bytes received."""
        response = self._request(
            "GET", self._url(repository, "manifests", ref), headers={"Accept": _ACCEPT}, stream=True
        )
        if response.status_code == 404:
            response.close()
            raise ArtifactNotFoundError(f"{repository}:{ref} not found on registry {self.host}")
        self._check(response, f"get manifest {repository}:{ref}")
        data = read_capped(response, f"registry {self.host}: manifest {repository}:{ref}")
        digest = digest_bytes(data)
        if ref.startswith("sha256:") and digest != ref:
            raise RegistryError(f"registry {self.host} served manifest {ref} with wrong content ({digest})")
        return data, digest

    def put_manifest(self, repository: str, ref: str, data: bytes, media_type: str = OCI_MANIFEST) -> str:
        response = self._request(
            "PUT", self._url(repository, "manifests", ref), data=data, headers={"Content-Type": media_type}
        )
        self._check(response, f"put manifest {repository}:{ref}")
        digest = digest_bytes(data)
        served = response.headers.get("Docker-Content-Digest")
        if served and served != digest:
            raise RegistryError(f"registry {self.host} stored manifest as {served}, expected {digest}")
        return digest

    def _paged(self, url: str, key: str, what: str) -> list[str]:
        """Follow the registry's ``Link: <…>; rel="next"`` pages."""
        found: list[str] = []
        next_url: str | None = url
        while next_url:
            response = self._request("GET", next_url, stream=True)
            if response.status_code == 404:
                response.close()
                return found
            self._check(response, what)
            page = read_json_capped(response, f"registry {self.host}: {what}")
            found.extend(page.get(key) or [])
            link = response.links.get("next", {}).get("url")
            next_url = f"{self.scheme}://{self.host}{link}" if link and link.startswith("/") else link
        return found

    def tags(self, repository: str) -> list[str]:
        return self._paged(
            f"{self.scheme}://{self.host}/v2/{repository}/tags/list?n=1000", "tags", "list tags"
        )

    def repositories(self) -> list[str]:
        return self._paged(
            f"{self.scheme}://{self.host}/v2/_catalog?n=1000", "repositories", "list repositories"
        )

    # --- blobs -----------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str) -> bool:
        return self._request("HEAD", self._url(repository, "blobs", digest)).status_code == 200

    def push_blob(self, repository: str, digest: str, size: int, path: Path) -> None:
        container = self.oras.get_container(f"{self.host}/{repository}")
        layer = {"mediaType": "application/octet-stream", "digest": digest, "size": size}
        try:
            response = self.oras.upload_blob(
                str(path), container, layer, do_chunked=size > BUFFER_SIZE * 8, chunk_size=BUFFER_SIZE * 4
            )
        except (requests.exceptions.RequestException, ValueError) as exc:
            raise RegistryError(f"registry {self.host}: upload of blob {digest} failed: {exc}") from None
        self._check(response, f"upload blob {digest}")

    def blob_reader(self, repository: str, digest: str) -> tuple[ChunkReader, requests.Response]:
        response = self._request("GET", self._url(repository, "blobs", digest), stream=True)
        if response.status_code == 404:
            raise ArtifactNotFoundError(f"blob {digest} not found in {repository} on registry {self.host}")
        self._check(response, f"get blob {digest}")
        return ChunkReader(response.iter_content(BUFFER_SIZE)), response

    # --- referrers -------------------------------------------------------------------------------

    def referrers(self, repository: str, subject: str) -> list[dict[str, Any]]:
        response = self._request(
            "GET", self._url(repository, "referrers", subject), headers={"Accept": OCI_INDEX}, stream=True
        )
        if response.status_code == 200:
            index = read_json_capped(response, f"registry {self.host}: referrers of {subject}")
            return list(index.get("manifests") or [])
        response.close()
        try:  # the tag-schema fallback
            data, _ = self.get_manifest(repository, fallback_tag(subject))
        except ArtifactNotFoundError:
            return []
        return list(json.loads(data).get("manifests") or [])

    def add_referrer(self, repository: str, subject: str, descriptor: dict[str, Any]) -> None:
        """Keep the fallback index at tag ``sha256-<hex>`` listing ``descriptor`` (no duplicates)."""
        probe = self._request(
            "GET", self._url(repository, "referrers", subject), headers={"Accept": OCI_INDEX}, stream=True
        )
        probe.close()
        if probe.status_code == 200:
            return  # the registry maintains referrers itself from the manifest's subject
        try:
            data, _ = self.get_manifest(repository, fallback_tag(subject))
            index = json.loads(data)
        except ArtifactNotFoundError:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        if any(d.get("digest") == descriptor["digest"] for d in index["manifests"]):
            return
        index["manifests"].append(descriptor)
        body = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
        self.put_manifest(repository, fallback_tag(subject), body, OCI_INDEX)

    def _check(self, response: requests.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise AuthenticationError(f"registry {self.host} denied {what} (HTTP {response.status_code})")
        if response.status_code >= 300:
            # The first bytes only: an error body is the registry's to size, not ours to read whole.
            head = next(response.iter_content(200), b"")
            response.close()
            detail = head[:200].decode("utf-8", "replace").replace("\n", " ")
            raise RegistryError(f"registry {self.host}: {what} failed: HTTP {response.status_code} {detail}")


def fallback_tag(subject: str) -> str:
    return f"sha256-{hex_of(subject)}"
