"""The `copy` command's dispatch: local ↔ registry, one artifact or a whole namespace (``--all``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from core.errors import InvalidReferenceError, InvalidRequestError
from core.refs import ArtifactRef
from hub.copy import CopyReport, copy_all, pull_from_registry, push_to_registry
from hub.digests import Progress
from hub.lock import resolve_lock
from hub.registry import RegistryClient, RemoteRef
from hub.settings import HubSettings
from hub.store import LocalStore

ProgressFactory = Callable[[int, str], AbstractContextManager[Progress]]


def _no_progress(_total: int, _label: str) -> AbstractContextManager[Progress]:
    return contextlib.nullcontext(lambda _count: None)


def run_copy(
    store: LocalStore,
    settings: HubSettings,
    src: str,
    dst: str,
    *,
    all_tags: bool = False,
    username: str | None = None,
    password: str | None = None,
    plain_http: bool | None = None,
    ca_cert: Path | None = None,
    progress_factory: ProgressFactory = _no_progress,
) -> CopyReport:
    if ca_cert is not None:
        if plain_http:
            raise InvalidRequestError("--ca-cert is for TLS: it cannot be combined with --plain-http")
        plain_http = False  # a CA given for this copy means TLS, on loopback too

    def make_client(host: str) -> RegistryClient:
        return RegistryClient(
            host,
            plain_http=plain_http,
            username=username,
            password=password,
            docker_config=settings.docker_config,
            timeout_s=settings.registry_timeout_s,
            ca_cert=ca_cert or settings.ca_cert,
        )

    src_remote, dst_remote = src.startswith("oci://"), dst.startswith("oci://")
    if src_remote and dst_remote:
        raise InvalidReferenceError(
            "copy between two registries goes through the local hub: copy in, then out"
        )
    if all_tags:
        return copy_all(store, src, dst, make_client)
    if dst_remote:
        remote = RemoteRef.parse(dst)
        name, _ = store.resolve_digest(src)
        total = sum(store.manifest(entry.digest).size for entry in resolve_lock(store, src).entries)
        with progress_factory(total, f"copy {name}") as advance:
            return push_to_registry(store, src, remote, make_client(remote.host), advance)
    if src_remote:
        remote = RemoteRef.parse(src)
        local = ArtifactRef.parse(dst)
        if local.tag is None:
            raise InvalidReferenceError(f"destination {dst} must be a tag reference (name:tag)")
        client = make_client(remote.host)
        return pull_from_registry(store, remote, client, local, None)
    # Both local: a copy within one hub is a new tag on the same digest.
    artifact = store.tag(src, dst)
    return CopyReport(artifacts=[artifact.pinned_ref])
