"""copy: between the local hub and OCI registries, an artifact with everything it references.

Dependencies keep their names under the destination's prefix (``oci://h/mirror/rag/p`` puts
``models/m`` at ``oci://h/mirror/models/m``); bytes are copied unchanged, so digests match at both ends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import ArtifactNotFoundError, IntegrityError, InvalidReferenceError
from core.refs import ArtifactRef
from core.store import ArtifactKind
from hub.digests import Progress
from hub.lock import references_of, resolve_lock
from hub.manifest import MAX_CONFIG_BYTES, parse_config, parse_manifest
from hub.media_types import OCI_MANIFEST, artifact_type
from hub.names import check_name_kind
from hub.registry import RegistryClient, RemoteRef
from hub.staging import BlobStaging
from hub.store import LocalStore

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str], RegistryClient]


@dataclass
class CopyReport:
    artifacts: list[str] = field(default_factory=list)  # "name@digest" copied (or already there)
    blobs_sent: int = 0
    blobs_skipped: int = 0
    bytes_sent: int = 0


def _prefix(repository: str, name: str) -> str:
    return repository[: -len(name)] if repository.endswith(name) else ""


def push_to_registry(
    store: LocalStore, ref: str, remote: RemoteRef, client: RegistryClient, progress: Progress | None = None
) -> CopyReport:
    report = CopyReport()
    name, root = store.resolve_digest(ref)
    prefix = _prefix(remote.repository, name)
    lock = resolve_lock(store, f"{name}@{root}")
    names = {entry.digest: entry.name for entry in lock.entries}
    # Dependencies first, so nothing on the registry ever points at a manifest it lacks.
    order = [entry.digest for entry in lock.entries if entry.digest != root] + [root]
    for digest in order:
        repository = remote.repository if digest == root else prefix + names[digest]
        _push_manifest(store, digest, repository, client, report, progress)
    if remote.ref.tag is not None:
        client.put_manifest(remote.repository, remote.ref.tag, store.manifest_bytes(root))
    for referrer in store.referrers(root):
        _push_manifest(store, referrer.digest, remote.repository, client, report, progress)
        client.add_referrer(
            remote.repository,
            root,
            {
                "mediaType": OCI_MANIFEST,
                "digest": referrer.digest,
                "size": store.blobs.size(referrer.digest),
                "artifactType": artifact_type(referrer.kind),
            },
        )
    return report


def _push_manifest(
    store: LocalStore,
    digest: str,
    repository: str,
    client: RegistryClient,
    report: CopyReport,
    progress: Progress | None,
) -> None:
    data = store.manifest_bytes(digest)
    manifest = store.check_complete(digest)  # an incomplete artifact is never sent
    for blob in manifest.blob_digests:
        if client.has_blob(repository, blob):
            report.blobs_skipped += 1
            continue
        store.blobs.check(blob)  # tampered content is never sent
        size = store.blobs.size(blob)
        client.push_blob(repository, blob, size, store.blobs.path(blob))
        report.blobs_sent += 1
        report.bytes_sent += size
        if progress is not None:
            progress(size)
    client.put_manifest(repository, digest, data)
    report.artifacts.append(f"{repository}@{digest}")


def pull_from_registry(
    store: LocalStore,
    remote: RemoteRef,
    client: RegistryClient,
    local: ArtifactRef,
    progress: Progress | None = None,
) -> CopyReport:
    """Everything is staged and checked first; only a complete artifact is published, then tagged."""
    report = CopyReport()
    data, root = client.get_manifest(remote.repository, remote.ref.digest or remote.ref.tag or "latest")
    with store.mutating(), BlobStaging(store.blobs) as staging:
        kind = _pull_manifest(staging, client, remote.repository, data, root, report, progress)
        referrers = []
        for descriptor in client.referrers(remote.repository, root):
            digest = descriptor["digest"]
            referrer, _ = client.get_manifest(remote.repository, digest)
            _pull_manifest(staging, client, remote.repository, referrer, digest, report, progress)
            referrers.append(digest)
        if local.tag:
            check_name_kind(local.name, kind, store.index.snapshot().manifests)
        staging.commit()
        for digest in referrers:
            store.record(local.name, digest, [])
        store.record(local.name, root, [local.tag] if local.tag else [])
    return report


def _pull_manifest(
    staging: BlobStaging,
    client: RegistryClient,
    repository: str,
    data: bytes,
    digest: str,
    report: CopyReport,
    progress: Progress | None,
) -> ArtifactKind:
    manifest = parse_manifest(digest, data)
    if manifest.config_size > MAX_CONFIG_BYTES:
        raise IntegrityError(
            f"{repository}@{digest}: config of {manifest.config_size:,} bytes, more than {MAX_CONFIG_BYTES:,}"
        )
    described = [(manifest.config_digest, manifest.config_size)]
    for blob, size in described + [(layer.digest, layer.size) for layer in manifest.layers]:
        if staging.has(blob):
            report.blobs_skipped += 1
            continue
        reader, response = client.blob_reader(repository, blob)  # a missing blob: refused here
        with response:
            staging.stage_stream(reader, blob, size, progress)  # type: ignore[arg-type]
        report.blobs_sent += 1
        report.bytes_sent += size
    spec = parse_config(manifest.config_digest, staging.read_bytes(manifest.config_digest))
    for pinned in references_of(manifest.kind, spec, digest).values():
        dependency = ArtifactRef.parse(pinned)
        assert dependency.digest is not None
        if staging.has(dependency.digest):
            continue
        dep_repo, dep_data = _find_dependency(client, repository, dependency.name, dependency.digest)
        _pull_manifest(staging, client, dep_repo, dep_data, dependency.digest, report, progress)
    # The manifest goes in last: whatever it points at is staged before it.
    staging.stage_bytes(data)
    report.artifacts.append(f"{repository}@{digest}")
    return manifest.kind


def _find_dependency(client: RegistryClient, repository: str, name: str, digest: str) -> tuple[str, bytes]:
    """A dependency lives at some prefix of the referring repository plus its own name."""
    parts = repository.split("/")[:-1]
    candidates = ["/".join(parts[:i]) + "/" for i in range(len(parts), 0, -1)] + [""]
    for prefix in dict.fromkeys(candidates):
        try:
            data, _ = client.get_manifest(prefix + name, digest)
        except ArtifactNotFoundError:
            continue
        return prefix + name, data
    raise ArtifactNotFoundError(
        f"{name}@{digest} (referenced by {repository}) not found on registry {client.host}"
    )


def copy_all(
    store: LocalStore,
    source: str,
    dest: str,
    make_client: ClientFactory,
    progress: Progress | None = None,
) -> CopyReport:
    """Mirror every tagged artifact under a namespace (``--all``)."""
    total = CopyReport()
    if source.startswith("oci://"):
        base = RemoteRef.parse(source.rstrip("/") + ":latest")
        client = make_client(base.host)
        namespace = base.repository
        for repository in client.repositories():
            if repository != namespace and not repository.startswith(namespace + "/"):
                continue
            for tag in client.tags(repository):
                if tag.startswith("sha256-"):
                    continue  # referrers fallback indexes travel with their subject
                rest = repository[len(namespace) + 1 :]
                prefix = "" if dest in ("", ".") else dest.strip("/")
                local_name = "/".join(part for part in (prefix, rest) if part) or repository
                remote = RemoteRef(base.host, ArtifactRef(repository, tag=tag))
                local = ArtifactRef.parse(f"{local_name}:{tag}")
                _merge(total, pull_from_registry(store, remote, client, local, progress))
        return total
    if not dest.startswith("oci://"):
        raise InvalidReferenceError("copy --all needs a registry on one side (oci://HOST/NAMESPACE)")
    base = RemoteRef.parse(dest.rstrip("/") + ":latest")
    client = make_client(base.host)
    artifacts = [a for a in store.list() if a.name == source or a.name.startswith(source.rstrip("/") + "/")]
    if not artifacts:
        raise ArtifactNotFoundError(f"no tagged artifacts under {source!r} in the hub")
    for artifact in artifacts:
        for tag in artifact.tags:
            target = RemoteRef(base.host, ArtifactRef(f"{base.repository}/{artifact.name}", tag=tag))
            _merge(total, push_to_registry(store, f"{artifact.name}:{tag}", target, client, progress))
    return total


def _merge(total: CopyReport, part: CopyReport) -> None:
    total.artifacts.extend(part.artifacts)
    total.blobs_sent += part.blobs_sent
    total.blobs_skipped += part.blobs_skipped
    total.bytes_sent += part.bytes_sent
