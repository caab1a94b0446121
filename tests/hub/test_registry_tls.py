"""Copies to and from a registry that serves TLS with a private CA (a self-signed certificate)."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aihub.hub_cli import hub_app
from core.errors import RegistryError
from hub.registry import RegistryClient

pytestmark = pytest.mark.registry
runner = CliRunner()
KEYS = ("model", "embedder", "prompt", "index", "pipeline", "report")


def hub(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(hub_app, ["--home", str(home), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def lock_of(home: Path, ref: str) -> dict[str, object]:
    code, out, err = hub(home, "lock", ref, "--json")
    assert code == 0, err
    return dict(json.loads(out))


def test_copy_over_tls_needs_the_private_ca_and_keeps_digests(
    tls_registry: Any, spec_files: dict[str, Path], tmp_path: Path
) -> None:
    assert tls_registry.ca_cert is not None
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    for key in KEYS:
        assert hub(home_a, "push", str(spec_files[key]))[0] == 0
    assert hub(home_b, "push", str(spec_files["prompt"]))[0] == 0  # something B already holds
    before_a, before_b = lock_of(home_a, "rag/docs-qa:prod"), lock_of(home_b, "prompts/rag-answer:v1")
    dest = f"oci://{tls_registry.host}/tls/rag/docs-qa:prod"

    # Without the CA the system CAs are used: the self-signed certificate is refused, in one line.
    code, _, err = hub(home_a, "copy", "rag/docs-qa:prod", dest, "--tls")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "certificate is not trusted by the system CAs" in err and "--ca-cert" in err
    code, _, err = hub(home_b, "copy", dest, "rag/docs-qa:prod", "--tls")
    assert code == 1 and "not trusted" in err and len(err.strip().splitlines()) == 1
    assert lock_of(home_a, "rag/docs-qa:prod") == before_a
    assert lock_of(home_b, "prompts/rag-answer:v1") == before_b
    assert hub(home_a, "verify")[0] == 0 and hub(home_b, "verify")[0] == 0

    ca = str(tls_registry.ca_cert)
    code, out, err = hub(home_a, "copy", "rag/docs-qa:prod", dest, "--tls", "--ca-cert", ca, "--json")
    assert code == 0, err
    assert json.loads(out)["blobs_sent"] > 0
    # --ca-cert alone means TLS, on loopback too
    code, _, err = hub(home_b, "copy", dest, "rag/docs-qa:prod", "--ca-cert", ca)
    assert code == 0, err
    after_b = lock_of(home_b, "rag/docs-qa:prod")
    assert after_b["composition_digest"] == before_a["composition_digest"]
    assert after_b == before_a
    assert lock_of(home_b, "prompts/rag-answer:v1") == before_b
    code, out, _ = hub(home_b, "show", "rag/docs-qa:prod", "--json")
    assert [r["kind"] for r in json.loads(out)["referrers"]] == ["eval-report"]
    assert hub(home_b, "verify")[0] == 0

    # AIHUB_CA_CERT is the setting's default for --ca-cert
    home_c = tmp_path / "c"
    code, _, err = hub(home_c, "copy", dest, "rag/docs-qa:prod", "--tls", env={"AIHUB_CA_CERT": ca})
    assert code == 0, err
    assert lock_of(home_c, "rag/docs-qa:prod") == before_a


def test_ca_cert_misuse_is_refused_clearly(
    tls_registry: Any, spec_files: dict[str, Path], untrusted_ca: Path, tmp_path: Path
) -> None:
    home = tmp_path / "a"
    assert hub(home, "push", str(spec_files["prompt"]))[0] == 0
    dest = f"oci://{tls_registry.host}/tls/prompt:v1"
    code, _, err = hub(home, "copy", "prompts/rag-answer:v1", dest, "--plain-http", "--ca-cert", "x.pem")
    assert code == 1 and "cannot be combined with --plain-http" in err
    missing = tmp_path / "missing.pem"
    code, _, err = hub(home, "copy", "prompts/rag-answer:v1", dest, "--ca-cert", str(missing))
    assert code == 1 and str(missing) in err and "not a readable file" in err
    # a CA that did not sign the registry's certificate is refused as well
    with pytest.raises(RegistryError, match=f"not trusted by the CA bundle {untrusted_ca}"):
        RegistryClient(tls_registry.host, plain_http=False, ca_cert=untrusted_ca)
    code, _, err = hub(home, "copy", "prompts/rag-answer:v1", dest, "--ca-cert", str(untrusted_ca))
    assert code == 1 and "not trusted by the CA bundle" in err
    code, _, err = hub(home, "copy", "prompts/rag-answer:v1", dest, "--ca-cert", str(tls_registry.ca_cert))
    assert code == 0, err
