"""`aihub cluster slurm --mode fleet`: the script's replica steps, the gateway's config and what bash runs.

Same method as test_slurm_script.py: bash runs the generated script with recording doubles for srun,
apptainer and the interpreter, so every argv below is what a node would have run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import InvalidSpecError
from ray_cluster.slurm import SlurmJobSpec, render_sbatch
from tests.ray_cluster.test_slurm_script import HOSTILE, _find, run_script

# Not `aihub.cli serve`: the interpreter double would take the replicas for the gateway.
SERVER = ("my-server", "--config", HOSTILE, "--host", "{host}", "--port", "{port}")


def _fleet(**changes: object) -> SlurmJobSpec:
    spec = SlurmJobSpec(mode="fleet", replicas=2, replica_command=SERVER, served_model_name="smol")
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_fleet_starts_replicas_a_gateway_on_their_folder_and_waits_for_members(tmp_path: Path) -> None:
    seen = run_script(
        _fleet(replicas=3, ready_replicas=2, replica_host="127.0.0.1", config=Path(HOSTILE), port=8123),
        tmp_path,
    )
    calls = seen["python"]
    config = _find(calls, "ray_cluster.fleet", "config")
    members = config[config.index("--members") + 1]
    fleet_yaml = config[config.index("--out") + 1]
    work = tmp_path / "work"
    assert members == f"{work}/aihub-members-7"  # per job, in the working directory
    assert fleet_yaml == f"{work}/aihub-fleet-7.yaml"
    assert config[config.index("--model-id") + 1] == "smol"
    assert config[config.index("--base") + 1] == str(Path(HOSTILE).resolve())  # the user's config, merged
    replicas = [call for call in calls if call[1] == "ray_cluster.fleet_replica"]
    assert len(replicas) == 3
    for replica in replicas:
        split = replica.index("--")
        assert replica[2:split] == ["--model-id", "smol", "--host", "127.0.0.1", "--members", members]
        assert tuple(replica[split + 1 :]) == SERVER  # {host} and {port} reach the replica unexpanded
    gateway = _find(calls, "aihub.cli", "serve")
    host = gateway[gateway.index("--host") + 1]
    assert gateway[3:] == ["--config", fleet_yaml, "--host", host, "--port", "8123"]
    wait = _find(calls, "ray_cluster.fleet", "wait-members")
    assert wait[3] == members
    assert wait[wait.index("--count") + 1] == "2"
    assert sum(word == "--pid" for word in wait) == 3  # gives up only when every replica step is gone
    assert seen["url"] == f"http://{host}:8123"
    # CPU replicas share the node (as the Ray steps do), each may use all of its CPUs.
    assert [line.split(" ", 5)[:5] for line in seen["srun"]] == [
        ["srun", "--nodes=1", "--ntasks=1", "--cpus-per-task=12", "--overlap"]
    ] * 3
    # The job's folder and config are removed when it ends (the double's replicas exited at once).
    assert not (work / "aihub-members-7").exists() and not (work / "aihub-fleet-7.yaml").exists()
    assert not seen["url_file_left"]


def test_the_default_replica_is_vllms_openai_server_on_its_own_gpus(tmp_path: Path) -> None:
    seen = run_script(
        SlurmJobSpec(
            mode="fleet", nodes=2, gpus_per_node=4, replicas=2, gpus_per_replica=2,
            replica_model="/models/SmolLM2-135M", replica_args=("--max-model-len", "4096"),
            image="aihub.sif", head_address="10.0.0.2",
        ),
        tmp_path,
    )  # fmt: skip
    replicas = [call for call in seen["python"] if call[1] == "ray_cluster.fleet_replica"]
    assert len(replicas) == 2
    server = replicas[0][replicas[0].index("--") + 1 :]
    assert server[0] == str(tmp_path / "bin" / "python-double")  # the job's interpreter, the image's python3
    assert server[1:] == [
        "-m", "vllm.entrypoints.openai.api_server", "--model", "/models/SmolLM2-135M",
        "--served-model-name", "SmolLM2-135M", "--host", "{host}", "--port", "{port}",
        "--tensor-parallel-size", "2", "--max-model-len", "4096",
    ]  # fmt: skip
    assert "--host" not in replicas[0][: replicas[0].index("--")]  # each binds its own node's address
    # Own GPUs, no overlap, and the CPUs that go with them: 12 CPUs * 2 of 4 GPUs.
    for line in seen["srun"]:
        assert line.startswith("srun --nodes=1 --ntasks=1 --cpus-per-task=6 --gres=gpu:2 --exact ")
        assert "--overlap" not in line
    # config, 2 replicas, gateway, wait-http, wait-members: all in the image, with the GPUs.
    assert seen["apptainer"] == [["--nv", "aihub.sif"]] * 6
    assert seen["url"] == "http://10.0.0.2:8000"


def test_no_wait_for_members_when_none_is_required(tmp_path: Path) -> None:
    seen = run_script(_fleet(ready_replicas=0, cpus_per_replica=1), tmp_path)
    assert not [call for call in seen["python"] if "wait-members" in call]
    assert all("--cpus-per-task=1 --overlap" in line for line in seen["srun"])


def test_fleet_script_is_valid_bash_and_says_what_it_starts() -> None:
    script = render_sbatch(_fleet(replicas=4))
    assert "mode fleet, 4 replica(s) of smol" in script.splitlines()[1]
    check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    # Nothing of the fleet leaks into the other modes.
    assert "fleet" not in render_sbatch(SlurmJobSpec(mode="embedded"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replicas": 0}, "--replicas"),
        ({"ready_replicas": 3}, "--ready-replicas"),
        ({"replica_command": ()}, "--replica-model"),
        ({"replica_model": "/m"}, "one of --replica-model"),
        ({"replica_command": ("server", "--port", "8000")}, "{port}"),
        ({"replica_args": ("--x",)}, "--replica-arg"),
        ({"served_model_name": None}, "--served-model-name"),
        ({"cpus_per_replica": 0}, "--cpus-per-replica"),
        ({"gpus_per_replica": 1}, "--gpus-per-replica"),
    ],
)
def test_invalid_fleets_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=re.escape(message)):
        render_sbatch(_fleet(**changes))


def test_cli_fleet_options(tmp_path: Path) -> None:
    output = tmp_path / "job.sbatch"
    model = tmp_path / "my model"
    model.mkdir()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aihub.cluster_cli", "slurm", "--output", str(output), *args],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        )  # fmt: skip

    done = cli("--mode", "fleet", "--replicas", "3", "--replica-command", shlex.join(SERVER),
               "--served-model-name", "smol", "--replica-host", "127.0.0.1", "--ready-replicas", "2",
               "--cpus-per-replica", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert output.read_text() == render_sbatch(
        _fleet(replicas=3, replica_host="127.0.0.1", ready_replicas=2, cpus_per_replica=1)
    )
    # A local model folder is passed as an absolute path: the job's steps run elsewhere.
    done = cli("--mode", "fleet", "--gpus-per-node", "1", "--replica-model", "my model",
               "--replica-arg", "--max-model-len", "--replica-arg", "4096")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert output.read_text() == render_sbatch(
        SlurmJobSpec(mode="fleet", gpus_per_node=1, replica_model=str(model),
                     replica_args=("--max-model-len", "4096"))
    )  # fmt: skip
    assert "--served-model-name 'my model'" in output.read_text()
    for args, hint in [
        (("--mode", "embedded", "--replica-model", "m"), "--mode"),
        (("--mode", "fleet", "--replica-command", "unclosed 'quote {port}"), "--replica-command"),
        (("--mode", "fleet"), "--replica-model"),
        (("--mode", "swarm"), "fleet"),
    ]:
        refused = cli(*args)
        assert refused.returncode != 0 and hint in refused.stderr, (args, refused.stderr)
