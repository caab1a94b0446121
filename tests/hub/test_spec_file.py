"""Spec files name files inside their folder; a symlink or `..` leading out of it is refused."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.hub_cli import hub_app
from core.errors import InvalidSpecError
from hub.spec_file import load_spec_file

runner = CliRunner()


def dataset_spec(folder: Path, files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "data.yaml"
    spec.write_text(f"kind: dataset\nname: datasets/leak\nspec:\n  format: text\n  files: [{files}]\n")
    return spec


def test_a_symlink_out_of_the_spec_folder_is_refused(tmp_path: Path) -> None:
    spec = dataset_spec(tmp_path / "specs", "link.txt")
    (tmp_path / "specs" / "link.txt").symlink_to("/etc/passwd")
    with pytest.raises(InvalidSpecError, match=r"'link\.txt' leads out of the spec's folder"):
        load_spec_file(spec)
    home = tmp_path / "home"
    result = runner.invoke(hub_app, ["--home", str(home), "push", str(spec)])
    assert result.exit_code == 1 and "leads out of the spec's folder" in result.stderr
    blobs = home / "hub" / "blobs" / "sha256"
    assert not any(p.read_bytes() == Path("/etc/passwd").read_bytes() for p in blobs.glob("*"))


def test_a_symlinked_folder_out_of_the_spec_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    spec = dataset_spec(tmp_path / "specs", "sub/secret.txt")
    os.symlink(outside, tmp_path / "specs" / "sub")
    with pytest.raises(InvalidSpecError, match="leads out"):
        load_spec_file(spec)


def test_dotdot_is_refused_and_links_inside_the_folder_are_fine(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    with pytest.raises(InvalidSpecError, match="inside the spec's folder"):
        load_spec_file(dataset_spec(tmp_path / "specs", "../secret.txt"))
    folder = tmp_path / "inside"
    spec = dataset_spec(folder, "link.txt")
    (folder / "real.txt").write_text("data")
    (folder / "link.txt").symlink_to("real.txt")
    loaded = load_spec_file(spec)
    assert loaded.files["link.txt"].read_text() == "data"
