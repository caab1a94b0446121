"""A pull of an artifact that the registry holds only in part is refused, and leaves the store as it was."""

from pathlib import Path

import pytest

from core.errors import ArtifactNotFoundError
from core.refs import ArtifactRef
from hub.copy import pull_from_registry, push_to_registry
from hub.registry import RegistryClient, RemoteRef
from hub.store import LocalStore

pytestmark = pytest.mark.registry


def files_of(store: LocalStore) -> dict[str, int]:
    return {
        str(p.relative_to(store.root)): p.stat().st_size
        for p in store.root.rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_pull_refuses_an_artifact_missing_a_layer(
    registry, store: LocalStore, composed: dict[str, str], tmp_path: Path
) -> None:
    client = RegistryClient(registry.host)
    remote = RemoteRef.parse(f"oci://{registry.host}/partial/models/tiny-chat:latest")
    push_to_registry(store, "models/tiny-chat:latest", remote, client)
    layers = store.manifest(composed["model"]).layers
    weights = next(layer.digest for layer in layers if layer.path.endswith(".safetensors"))
    url = f"{client.scheme}://{registry.host}/v2/partial/models/tiny-chat/blobs/{weights}"
    assert client._request("DELETE", url).status_code == 202  # the registry now lacks one layer

    site_b = LocalStore(tmp_path / "site-b", cache_dir=tmp_path / "site-b-cache")
    before = files_of(site_b)
    with pytest.raises(ArtifactNotFoundError, match=weights):
        pull_from_registry(site_b, remote, client, ArtifactRef.parse("models/tiny-chat:latest"))
    assert files_of(site_b) == before  # no config, no other layer, no temp file left behind
