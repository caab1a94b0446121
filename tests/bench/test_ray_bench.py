"""`aihub bench --ray`: both modes measured in one run, with Ray's own floor beside them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray


def test_bench_ray_prints_both_modes_and_writes_figures(tmp_path: Path) -> None:
    out = tmp_path / "ray.json"
    command = [sys.executable, "-m", "aihub.cli", "bench", "--ray", "--ray-requests", "10"]
    result = subprocess.run(
        [*command, "--json-out", str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Ray mode adds p50" in result.stdout
    assert "Ray's own floor" in result.stdout
    figures = json.loads(out.read_text())
    for side in ("embedded_plain", "ray_plain", "embedded_stream", "ray_stream"):
        assert figures[side]["completed"] == 10
    # The double answers in about 20 ms + 15 x 5 ms in both modes; Ray cannot be faster than that.
    assert figures["ray_plain"]["median_e2el_ms"] >= 90
    assert figures["ttft_ratio"] > 0.9
    assert 0 < figures["floor"]["actor_call_ms"] < figures["ray_plain"]["median_e2el_ms"]
    # A handle call crosses to another process: it adds time over the in-process double, never much less.
    assert "a Serve handle call" in result.stdout
    assert figures["handle"]["unary_ms"] > -1 and figures["handle"]["first_chunk_ms"] > -1
