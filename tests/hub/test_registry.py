import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.hub_cli import hub_app
from core.errors import AuthenticationError, IntegrityError
from core.refs import ArtifactRef
from hub.copy import pull_from_registry, push_to_registry
from hub.lock import resolve_lock
from hub.media_types import MODEL_ARTIFACT_TYPE, OCI_INDEX
from hub.registry import RegistryClient, RemoteRef, fallback_tag
from hub.store import LocalStore
from hub.verify import verify_store

pytestmark = pytest.mark.registry
runner = CliRunner()


def hub(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(hub_app, ["--home", str(home), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_copy_to_a_registry_and_on_to_a_second_site(
    registry, store: LocalStore, composed: dict[str, str], tmp_path: Path
) -> None:
    client = RegistryClient(registry.host)
    remote = RemoteRef.parse(f"oci://{registry.host}/site-a/rag/docs-qa:prod")
    report = push_to_registry(store, "rag/docs-qa:prod", remote, client)
    assert report.blobs_sent > 0
    # every manifest keeps its digest on the registry
    for entry in resolve_lock(store, "rag/docs-qa:prod").entries:
        _, digest = client.get_manifest(f"site-a/{entry.name}", entry.digest)
        assert digest == entry.digest == store.resolve(f"{entry.name}@{entry.digest}").digest
    assert client.get_manifest("site-a/rag/docs-qa", "prod")[1] == composed["pipeline"]
    # no referrers API here: the tag-schema fallback index lists the eval report
    index, _ = client.get_manifest("site-a/rag/docs-qa", fallback_tag(composed["pipeline"]))
    fallback = json.loads(index)
    assert fallback["mediaType"] == OCI_INDEX
    assert [d["digest"] for d in fallback["manifests"]] == [composed["report"]]

    site_b = LocalStore(tmp_path / "site-b" / "hub", cache_dir=tmp_path / "site-b" / "cache")
    pull_from_registry(site_b, remote, client, ArtifactRef.parse("rag/docs-qa:prod"))
    assert site_b.resolve("rag/docs-qa:prod").digest == composed["pipeline"]
    assert (
        resolve_lock(site_b, "rag/docs-qa:prod").composition_digest
        == resolve_lock(store, "rag/docs-qa:prod").composition_digest
    )
    assert [r.digest for r in site_b.referrers(composed["pipeline"])] == [composed["report"]]
    model = site_b.resolve(f"models/tiny-chat@{composed['model']}")
    original = store.materialize("models/tiny-chat")
    copied = site_b.materialize(model.pinned_ref)
    assert (copied / "model" / "model.safetensors").read_bytes() == (
        original / "model" / "model.safetensors"
    ).read_bytes()
    assert verify_store(site_b).ok


def test_oras_sdk_pulls_an_aihub_model_by_media_types(
    registry, store: LocalStore, composed: dict[str, str], tmp_path: Path
) -> None:
    import oras.provider

    client = RegistryClient(registry.host)
    push_to_registry(
        store,
        "models/tiny-chat:latest",
        RemoteRef.parse(f"oci://{registry.host}/models/tiny-chat:v1"),
        client,
    )
    oras_client = oras.provider.Registry(insecure=True)
    manifest = oras_client.get_manifest(f"{registry.host}/models/tiny-chat:v1")
    assert manifest["artifactType"] == MODEL_ARTIFACT_TYPE
    files = oras_client.pull(target=f"{registry.host}/models/tiny-chat:v1", outdir=str(tmp_path / "pulled"))
    assert sorted(Path(f).relative_to(tmp_path / "pulled").as_posix() for f in files) == [
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
    ]
    unpacked = store.materialize("models/tiny-chat")
    for name in ("model/model.safetensors", "model/config.json"):
        assert (tmp_path / "pulled" / name).read_bytes() == (unpacked / name).read_bytes()


def test_cli_copy_with_credentials_and_mirror_all(
    auth_registry, spec_files: dict[str, Path], tmp_path: Path
) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    for key in ("model", "embedder", "prompt", "index", "pipeline", "report"):
        assert hub(home_a, "push", str(spec_files[key]))[0] == 0
    dest = f"oci://{auth_registry.host}/mirror"
    code, _, err = hub(home_a, "copy", "--all", "rag", dest)
    assert code == 1 and "needs credentials" in err and len(err.strip().splitlines()) == 1
    code, _, err = hub(home_a, "copy", "--all", "rag", dest, "--username", "alice", "--password", "wrong")
    assert code == 1 and "refused the credentials" in err
    code, _, err = hub(
        home_a, "copy", "--all", "rag", dest, "--username", "alice", "--password", "s3cret-pass"
    )
    assert code == 0, err
    # the second site reads its credentials from a docker config
    docker_config = tmp_path / "docker.json"
    token = base64.b64encode(b"alice:s3cret-pass").decode()
    docker_config.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    env = {"AIHUB_DOCKER_CONFIG": str(docker_config)}
    code, out, err = hub(home_b, "copy", "--all", dest, ".", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["artifacts"]
    locks = [json.loads(hub(h, "lock", "rag/docs-qa:prod", "--json")[1]) for h in (home_a, home_b)]
    assert locks[0]["composition_digest"] == locks[1]["composition_digest"]
    code, out, _ = hub(home_b, "show", "rag/docs-qa:prod", "--json")
    assert [r["kind"] for r in json.loads(out)["referrers"]] == ["eval-report"]
    assert hub(home_b, "verify")[0] == 0


def test_wrong_credentials_fail_fast(auth_registry) -> None:
    with pytest.raises(AuthenticationError, match="refused the credentials"):
        RegistryClient(auth_registry.host, username="alice", password="nope")


def test_a_tampered_local_blob_is_never_sent(registry, store: LocalStore, composed: dict[str, str]) -> None:
    import os

    weights = store.manifest(composed["embedder"]).layers[0].digest
    path = store.blobs.path(weights)
    os.chmod(path, 0o644)
    path.write_bytes(b"evil")
    client = RegistryClient(registry.host)
    with pytest.raises(IntegrityError, match=weights):
        push_to_registry(
            store, "models/tiny-embedder:latest", RemoteRef.parse(f"oci://{registry.host}/evil/e:1"), client
        )
    assert not client.has_blob("evil/e", weights)
