"""The sbatch script generator: its directives and commands, and what bash really runs from it.

The execution tests run the generated script with bash, with recording test doubles for the programs a
laptop lacks (srun, apptainer) and for the interpreter (so no Ray or gateway starts): the argv each
double receives is what a real node would have run, so quoting is checked by bash itself.
"""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import AihubError, InvalidSpecError
from ray_cluster.slurm import SlurmJobSpec, render_sbatch, submit, write_sbatch

HOSTILE = "/scratch/it's $(touch pwned) `x` dir/a b"

SRUN_DOUBLE = """#!/bin/bash
# srun test double: drops srun's options and runs the command once, here.
line="srun$(printf ' %s' "$@")"; printf '%s\\n' "$line" >> "$DOUBLE_RECORD.srun"  # one write: atomic
while [[ $# -gt 0 && $1 == -* ]]; do
  case "$1" in -w|--nodelist|-N|-n) shift 2 ;; *) shift ;; esac
done
exec "$@"
"""

APPTAINER_DOUBLE = """#!/bin/bash
# apptainer test double: records its options and image, then runs the command.
shift  # exec
opts=()
while [[ $1 == --* ]]; do
  if [[ $1 == --bind ]]; then opts+=("$1" "$2"); shift 2; else opts+=("$1"); shift; fi
done
image=$1; shift
line=$(printf '%s\\x1f' "${opts[@]}" "$image"); printf '%s\\n' "$line" >> "$DOUBLE_RECORD.apptainer"
exec "$@"
"""

# Stands in for the interpreter: records argv; Ray "blocks", wait-ray waits (as the real probe does)
# until --nodes Ray starts are recorded, the gateway waits for the URL file and records it.
PYTHON_DOUBLE = """#!/bin/bash
line=$(printf '%s\\x1f' "$@"); printf '%s\\n' "$line" >> "$DOUBLE_RECORD.python"  # one write: atomic
case "$*" in
  *"ray.scripts.scripts start"*) exec sleep 30 ;;
  *"wait-ray"*)
    nodes=$(sed -E 's/.* --nodes ([0-9]+).*/\\1/' <<< "$*")
    for _ in $(seq 200); do
      (( $(grep -c 'ray.scripts.scripts.start' "$DOUBLE_RECORD.python") >= (nodes > 1 ? 2 : 1) )) && exit 0
      sleep 0.05
    done
    exit 1
    ;;
  *"aihub.cli serve"*)
    for _ in $(seq 400); do [[ -f aihub-gateway.url ]] && break; sleep 0.05; done  # 20 s: a busy CI machine
    cat aihub-gateway.url > "$DOUBLE_RECORD.url"
    ;;
esac
exit 0
"""


def _double(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _records(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.rstrip("\x1f").split("\x1f") for line in path.read_text().splitlines()]


def run_script(spec: SlurmJobSpec, tmp_path: Path) -> dict[str, object]:
    """Run the script for ``spec`` with bash and the doubles; returns what each double saw."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    _double(bin_dir, "srun", SRUN_DOUBLE)
    _double(bin_dir, "apptainer", APPTAINER_DOUBLE)
    python = _double(bin_dir, "python-double", PYTHON_DOUBLE)
    work = tmp_path / "work"
    work.mkdir()
    script = write_sbatch(_replace(spec, python=str(python)), tmp_path / "job.sbatch")
    record = tmp_path / "record"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOUBLE_RECORD": str(record),
        "SLURMD_NODENAME": "node1",
        "SLURM_JOB_ID": "7",
        "SLURM_CPUS_ON_NODE": "12",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    url = Path(f"{record}.url")
    return {
        "python": _records(Path(f"{record}.python")),
        "apptainer": _records(Path(f"{record}.apptainer")),
        "srun": Path(f"{record}.srun").read_text().splitlines() if Path(f"{record}.srun").exists() else [],
        "url": url.read_text().strip() if url.exists() else None,
        "stdout": done.stdout,
        "url_file_left": (work / "aihub-gateway.url").exists(),
    }


def _replace(spec: SlurmJobSpec, **changes: object) -> SlurmJobSpec:
    from dataclasses import replace

    return replace(spec, **changes)  # type: ignore[arg-type]


def _find(calls: list[list[str]], *words: str) -> list[str]:
    """The one recorded call (background steps record in any order) that starts with -m WORDS."""
    matches = [call for call in calls if call[1 : 1 + len(words)] == list(words)]
    assert len(matches) == 1, (words, calls)
    return matches[0]


def _directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_directives_follow_the_spec() -> None:
    script = render_sbatch(
        SlurmJobSpec(nodes=4, gpus_per_node=8, partition="booster", time_limit="02:00:00", account="proj1")
    )
    assert _directives(script) == [
        "--job-name=aihub",
        "--nodes=4",
        "--ntasks-per-node=1",
        "--output=aihub-%j.log",
        "--exclusive",
        "--gpus-per-node=8",
        "--partition=booster",
        "--time=02:00:00",
        "--account=proj1",
    ]
    cpu_only = _directives(render_sbatch(SlurmJobSpec(nodes=1, gpus_per_node=0, exclusive=False)))
    assert not any(d.startswith(("--gpus", "--partition", "--time", "--exclusive")) for d in cpu_only)


def test_script_is_valid_bash_in_every_shape(tmp_path: Path) -> None:
    shapes = [
        SlurmJobSpec(),
        SlurmJobSpec(nodes=3, gpus_per_node=4, image=HOSTILE, config=Path(HOSTILE), host="0.0.0.0"),
        SlurmJobSpec(mode="embedded", env=(("A", "it's"),), head_address="10.0.0.1"),
    ]
    for number, spec in enumerate(shapes):
        path = write_sbatch(spec, tmp_path / f"{number}.sbatch")
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        assert os.access(path, os.X_OK)


def test_ray_mode_starts_head_then_gateway_on_it(tmp_path: Path) -> None:
    seen = run_script(SlurmJobSpec(nodes=1, gpus_per_node=0, port=8123, ray_port=6400), tmp_path)
    calls = seen["python"]
    assert len(calls) == 4
    head = _find(calls, "ray.scripts.scripts", "start", "--head")
    wait_head = _find(calls, "ray_cluster.slurm_probe", "wait-ray")
    gateway = _find(calls, "aihub.cli", "serve")
    wait_http = _find(calls, "ray_cluster.slurm_probe", "wait-http")
    assert head[:4] == ["-m", "ray.scripts.scripts", "start", "--head"]
    assert "--block" in head and "--num-cpus=12" in head and "--num-gpus=0" in head
    address = next(arg.split("=", 1)[1] for arg in head if arg.startswith("--node-ip-address="))
    assert "--port=6400" in head
    assert wait_head[:7] == [
        "-m",
        "ray_cluster.slurm_probe",
        "wait-ray",
        "--address",
        f"{address}:6400",
        "--nodes",
        "1",
    ]
    assert wait_head[wait_head.index("--timeout") + 1] == "900"
    assert wait_head[wait_head.index("--pid") + 1].isdigit()  # gives up when the head's srun exits
    assert gateway[:5] == ["-m", "aihub.cli", "serve", "--ray", "--address"]
    assert gateway[5] == f"{address}:6400"
    # The gateway binds to the head node's address by default and that is the published URL.
    assert gateway[gateway.index("--host") + 1] == address
    assert wait_http[:4] == ["-m", "ray_cluster.slurm_probe", "wait-http", f"http://{address}:8123/ready"]
    assert seen["url"] == f"http://{address}:8123"
    assert seen["srun"] == [
        f"srun --nodes=1 --ntasks=1 --cpus-per-task=12 --overlap -w node1 {tmp_path / 'bin' / 'python-double'}"
        f" -m ray.scripts.scripts start --head --block --node-ip-address={address} --port=6400"
        " --num-cpus=12 --num-gpus=0 --disable-usage-stats"
    ]
    assert seen["apptainer"] == []
    assert not seen["url_file_left"]  # removed when the job ends, so it never points at a dead gateway


def test_workers_start_on_the_other_nodes_and_all_are_awaited(tmp_path: Path) -> None:
    seen = run_script(SlurmJobSpec(nodes=4, gpus_per_node=2, head_address="10.1.2.3"), tmp_path)
    worker_sruns = [line for line in seen["srun"] if "--exclude" in line]
    assert len(worker_sruns) == 1
    assert worker_sruns[0].startswith(
        "srun --nodes=3 --ntasks=3 --ntasks-per-node=1 --cpus-per-task=12 --gres=gpu:2 --overlap"
        " --exclude=node1 bash -c"
    )
    head_srun = next(line for line in seen["srun"] if "--head" in line)
    assert head_srun.startswith(
        "srun --nodes=1 --ntasks=1 --cpus-per-task=12 --gres=gpu:2 --overlap -w node1 "
    )
    calls = seen["python"]
    worker = _find(calls, "ray.scripts.scripts", "start", "--address=10.1.2.3:6379")
    # Expanded on the worker node: its own CPU count, the head's address.
    assert worker[3:] == [
        "--address=10.1.2.3:6379",
        "--block",
        "--num-cpus=12",
        "--num-gpus=2",
        "--disable-usage-stats",
    ]
    waits = [c[c.index("--nodes") + 1] for c in calls if "wait-ray" in c]
    assert waits == ["1", "4"]
    assert seen["url"] == "http://10.1.2.3:8000"


def test_image_wraps_every_command_with_nv_only_for_gpus(tmp_path: Path) -> None:
    gpu = run_script(
        SlurmJobSpec(
            nodes=2, gpus_per_node=4, image=HOSTILE, binds=("/scratch:/data",), head_address="10.0.0.9"
        ),
        tmp_path / "gpu",
    )
    # head, worker, two Ray waits, the gateway and its probe: six commands, all inside the image.
    assert len(gpu["python"]) == 6
    assert gpu["apptainer"] == [["--nv", "--bind", "/scratch:/data", HOSTILE]] * 6
    cpu = run_script(SlurmJobSpec(nodes=1, gpus_per_node=0, image="aihub.sif"), tmp_path / "cpu")
    assert cpu["apptainer"] == [["aihub.sif"]] * 4


def test_image_defaults_to_the_containers_python() -> None:
    script = render_sbatch(SlurmJobSpec(image="aihub.sif"))
    assert "apptainer exec aihub.sif python3 -m aihub.cli serve --ray" in script
    assert sys.executable not in script
    assert f"{sys.executable} -m aihub.cli serve" in render_sbatch(SlurmJobSpec())


def test_hostile_values_reach_commands_intact(tmp_path: Path) -> None:
    config = tmp_path / "it's a $(touch pwned) config.yaml"
    seen = run_script(
        SlurmJobSpec(
            mode="embedded",
            config=config,
            host="127.0.0.1",
            port=9001,
            env=(("AIHUB_NOTE", 'it\'s "$HOME" `x`'),),
        ),
        tmp_path,
    )
    gateway = _find(seen["python"], "aihub.cli", "serve")
    assert gateway == [
        "-m",
        "aihub.cli",
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        "9001",
    ]
    assert seen["url"] == "http://127.0.0.1:9001"
    assert not list(tmp_path.rglob("pwned"))
    script = render_sbatch(SlurmJobSpec(env=(("AIHUB_NOTE", 'it\'s "$HOME" `x`'),)))
    exported = subprocess.run(
        [
            "bash",
            "-c",
            f'{next(line for line in script.splitlines() if "AIHUB_NOTE" in line)}; printf %s "$AIHUB_NOTE"',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert exported.stdout == 'it\'s "$HOME" `x`'


def test_wildcard_host_publishes_the_head_address(tmp_path: Path) -> None:
    seen = run_script(SlurmJobSpec(mode="embedded", host="0.0.0.0", head_address="10.9.8.7"), tmp_path)
    gateway = _find(seen["python"], "aihub.cli", "serve")
    assert gateway[gateway.index("--host") + 1] == "0.0.0.0"
    assert seen["url"] == "http://10.9.8.7:8000"


def test_dashboard_can_be_left_out() -> None:
    head = next(
        line for line in render_sbatch(SlurmJobSpec(dashboard=False)).splitlines() if "--num-gpus=" in line
    )
    assert head.endswith("--disable-usage-stats --include-dashboard=false &")
    assert "--include-dashboard" not in render_sbatch(SlurmJobSpec())


def test_offline_environment_is_exported() -> None:
    script = render_sbatch(SlurmJobSpec())
    for line in ("export RAY_USAGE_STATS_ENABLED=0", "export HF_HUB_OFFLINE=1"):
        assert line in script.splitlines()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nodes": 0}, "--nodes"),
        ({"gpus_per_node": -1}, "--gpus-per-node"),
        ({"partition": "gpu\n#SBATCH --account=other"}, "--partition"),
        ({"time_limit": "1:00 --mem=0"}, "--time"),
        ({"mode": "embedded", "nodes": 2}, "embedded"),
        ({"env": (("BAD KEY", "x"),)}, "--env"),
        ({"port": 70000}, "--port"),
        ({"url_file": "../url"}, "--url-file"),
    ],
)
def test_invalid_specs_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=re.escape(message)):
        render_sbatch(_replace(SlurmJobSpec(), **changes))


def test_submit_returns_the_job_id_and_maps_failures(tmp_path: Path) -> None:
    good = _double(tmp_path, "sbatch-ok", "#!/bin/bash\n[[ $1 == --parsable ]] && echo '4242;cluster'\n")
    assert submit(tmp_path / "job.sbatch", sbatch=[str(good)]) == "4242"
    bad = _double(
        tmp_path, "sbatch-bad", "#!/bin/bash\necho 'sbatch: error: invalid partition' >&2\nexit 1\n"
    )
    with pytest.raises(AihubError, match="invalid partition"):
        submit(tmp_path / "job.sbatch", sbatch=[str(bad)])
    with pytest.raises(AihubError, match="not found"):
        submit(tmp_path / "job.sbatch", sbatch=[str(tmp_path / "no-sbatch")])


def test_cli_writes_the_script(tmp_path: Path) -> None:
    output = tmp_path / "out" / "job.sbatch"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aihub.cluster_cli",
            "slurm",
            "--nodes",
            "2",
            "--gpus-per-node",
            "1",
            "--image",
            "aihub.sif",
            "--partition",
            "gpu",
            "--env",
            "A=b c",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert output.read_text() == render_sbatch(
        SlurmJobSpec(nodes=2, gpus_per_node=1, image="aihub.sif", partition="gpu", env=(("A", "b c"),))
    )
    refused = subprocess.run(
        [sys.executable, "-m", "aihub.cluster_cli", "slurm", "--partition", "a;b", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and "--partition" in refused.stderr
