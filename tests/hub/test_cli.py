import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.hub_cli import hub_app

runner = CliRunner()


def hub(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(hub_app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path, spec_files: dict[str, Path]) -> Path:
    home = tmp_path / "home"
    specs = spec_files
    for key in ("model", "embedder", "prompt", "index", "pipeline", "report"):
        code, out, err = hub(home, "push", str(specs[key]))
        assert code == 0, err
        assert out.strip().startswith("sha256:")
    return home


def test_push_ls_show_lock(home: Path) -> None:
    code, out, _ = hub(home, "ls", "--json")
    assert code == 0
    listed = {(a["name"], tuple(a["tags"])) for a in json.loads(out)}
    assert ("rag/docs-qa", ("prod",)) in listed and ("prompts/rag-answer", ("latest", "v1")) in listed
    code, out, _ = hub(home, "ls")
    assert code == 0 and "rag/docs-qa" in out

    code, out, _ = hub(home, "show", "rag/docs-qa:prod", "--json")
    shown = json.loads(out)
    assert shown["kind"] == "pipeline" and shown["artifactType"] == "application/vnd.aihub.pipeline.v1+json"
    assert [r["name"] for r in shown["referrers"]] == ["reports/docs-qa"]

    code, out, _ = hub(home, "lock", "rag/docs-qa:prod", "--json")
    lock = json.loads(out)
    assert code == 0 and len(lock["lock"]["artifacts"]) == 5
    code, out, _ = hub(home, "lock", "rag/docs-qa:prod")
    assert lock["composition_digest"] in out


def test_tag_untag_and_gc(home: Path) -> None:
    code, out, _ = hub(home, "tag", "rag/docs-qa:prod", "rag/docs-qa:rollback")
    assert code == 0 and "rag/docs-qa:rollback" in out
    assert hub(home, "untag", "rag/docs-qa:prod")[0] == 0
    code, out, _ = hub(home, "show", "rag/docs-qa:rollback", "--json")
    assert json.loads(out)["tags"] == ["rollback"]
    code, out, _ = hub(home, "gc", "--json")
    assert code == 0 and json.loads(out)["removed_blobs"] == 0
    assert hub(home, "verify")[0] == 0


def test_export_import_to_another_site(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "rag.tar"
    code, _, err = hub(home, "export", "rag/docs-qa:prod", str(archive))
    assert code == 0, err
    other = tmp_path / "site-b"
    code, _, err = hub(other, "import", str(archive))
    assert code == 0, err
    locks = [json.loads(hub(h, "lock", "rag/docs-qa:prod", "--json")[1]) for h in (home, other)]
    assert locks[0]["composition_digest"] == locks[1]["composition_digest"]
    code, out, _ = hub(other, "show", "rag/docs-qa:prod", "--json")
    assert [r["name"] for r in json.loads(out)["referrers"]] == ["reports/docs-qa"]
    assert hub(other, "verify", "--json")[0] == 0


def test_verify_exits_non_zero_on_corruption(home: Path) -> None:
    blobs = home / "hub" / "blobs" / "sha256"
    victim = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    os.chmod(victim, 0o644)
    victim.write_bytes(b"tampered")
    code, out, err = hub(home, "verify")
    assert code == 1 and victim.name in err
    code, out, _ = hub(home, "verify", "--json")
    assert code == 1 and json.loads(out)["ok"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "Not A Ref"), "invalid artifact reference"),
        (("show", "rag/missing:prod"), "not found"),
        (("ls", "--kind", "widget"), "unknown artifact kind"),
        (("untag", "rag/docs-qa@sha256:" + "0" * 64), "not a tag reference"),
        (("copy", "rag/docs-qa:prod", "oci://127.0.0.1:9/rag/docs-qa:prod"), "cannot reach registry"),
        (("import", "/nonexistent.tar"), "cannot read archive"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(home: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = hub(home, *args)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_invalid_spec_file_push(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("kind: pipeline\nname: rag/x\nspec:\n  model: models/none\n  prompt: prompts/none\n")
    code, _, err = hub(tmp_path / "home", "push", str(spec))
    assert code == 1 and "does not resolve" in err and len(err.strip().splitlines()) == 1
    spec.write_text("kind: prompt\nname: p/x\nspec: {template: '{{ a }}', variables: [a], bogus: 1}\n")
    code, _, err = hub(tmp_path / "home", "push", str(spec))
    assert code == 1 and "bogus" in err
    spec.write_text("kind: [unclosed\n")
    code, _, err = hub(tmp_path / "home", "push", str(spec))
    assert code == 1 and "not valid YAML" in err
