"""A prompt whose template the sandbox would refuse at every call is refused at push."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.hub_cli import hub_app
from core.errors import InvalidSpecError
from hub.store import LocalStore


def test_a_sandbox_violating_template_is_refused_at_push(store: LocalStore) -> None:
    before = store.index.path.read_bytes()
    with pytest.raises(InvalidSpecError, match="template sandbox forbids"):
        store.push(
            "prompt", "prompts/escape", {"template": "{{ question.__class__ }}", "variables": ["question"]}
        )
    assert store.index.path.read_bytes() == before


def test_cli_push_of_a_sandbox_violating_template_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "prompt.yaml"
    spec.write_text(
        "kind: prompt\nname: prompts/mutate\nspec:\n"
        "  template: '{{ documents.append(1) }}{{ question }}'\n  variables: [documents, question]\n"
    )
    result = CliRunner().invoke(hub_app, ["--home", str(tmp_path / "home"), "push", str(spec)])
    assert result.exit_code == 1 and "mutating method 'append'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
