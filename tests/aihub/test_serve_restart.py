"""A second start reuses the converted default model instead of converting again."""

from pathlib import Path

import pytest

from aihub.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow


def test_second_start_reuses_the_hub_copy(aihub_home: Path, tmp_path: Path) -> None:
    config = {"app": {"home": str(aihub_home), "embedders": []}}
    with GatewayProcess(config, tmp_path / "first", ready_timeout_s=600):
        pass
    with GatewayProcess(config, tmp_path / "second", ready_timeout_s=600) as second:
        log = second.log_path.read_text()
    assert "converting" not in log
    assert (aihub_home / "hub" / "index.json").exists()
