"""Slurm launch: an sbatch script that starts the gateway inside the allocation, in one of three modes.

``ray``: a Ray cluster in the allocation and ``aihub serve --ray`` on it. ``embedded``: plain ``aihub
serve``. ``fleet``: N OpenAI-compatible server steps (vLLM's by default), each announcing itself in a
members folder through ``ray_cluster.fleet_replica``, and a gateway that serves them as one ``openai``
engine watching that folder, so replicas join and leave while the job runs.

The script is rendered from ``slurm_job.sh.jinja``. Every value that reaches a shell command line is
quoted here with ``shlex.quote``; values of ``#SBATCH`` lines (which sbatch parses itself, without a
shell) are checked against a conservative pattern instead.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from core.errors import AihubError, InvalidSpecError

logger = logging.getLogger(__name__)

TEMPLATE = "slurm_job.sh.jinja"
URL_FILE = "aihub-gateway.url"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
_DIRECTIVE_VALUE = re.compile(r"^[A-Za-z0-9_.:,@%+=/\-\[\]]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Mode = Literal["ray", "embedded", "fleet"]
VLLM_SERVER = ("-m", "vllm.entrypoints.openai.api_server")


@dataclass(frozen=True)
class SlurmJobSpec:
    """What `aihub cluster slurm` asks for; ``python`` runs aihub, Ray and the readiness probe."""

    nodes: int = 1
    gpus_per_node: int = 0
    image: str | None = None  # an Apptainer image (.sif); every command then runs inside it
    config: Path | None = None
    partition: str | None = None
    time_limit: str | None = None
    account: str | None = None
    port: int = 8000
    ray_port: int = 6379
    host: str | None = None  # gateway bind address; None: the head node's address
    head_address: str | None = None  # address Ray and clients use for the head; None: `hostname -i`
    mode: Mode = "ray"
    job_name: str = "aihub"
    workdir: Path | None = None
    log_file: str = "aihub-%j.log"
    url_file: str = URL_FILE
    ready_timeout_s: int = 900
    exclusive: bool = True
    dashboard: bool = True  # Ray's dashboard on the head (port 8265)
    python: str | None = None  # None: python3 inside an image, else this interpreter
    binds: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=())
    # --mode fleet: ``replicas`` server steps behind the gateway.
    replicas: int = 1
    replica_model: str | None = None  # vLLM's --model: a folder or a model name
    served_model_name: str | None = None  # the id clients ask for; default: replica_model's last part
    replica_command: tuple[str, ...] = ()  # instead of vLLM: a server command with {host} and {port}
    replica_args: tuple[str, ...] = ()  # appended to vLLM's command line
    replica_host: str | None = None  # replicas' bind address; None: each replica's node address
    cpus_per_replica: int | None = None  # None: the node's CPUs, shared by CPU replicas, split by GPUs
    gpus_per_replica: int | None = None  # None: 1 on GPU nodes, else 0
    ready_replicas: int = 1  # replicas that must have joined before the URL is published

    def interpreter(self) -> str:
        if self.python is not None:
            return self.python
        return "python3" if self.image else sys.executable

    def served_name(self) -> str:
        if self.served_model_name:
            return self.served_model_name
        return (self.replica_model or "").rstrip("/").rsplit("/", 1)[-1]

    def replica_gpus(self) -> int:
        if self.gpus_per_replica is not None:
            return self.gpus_per_replica
        return 1 if self.gpus_per_node > 0 else 0

    def server_command(self) -> tuple[str, ...]:
        """The replica's server, with {host} and {port} left for ``fleet_replica`` to fill in."""
        if self.replica_command:
            return self.replica_command
        words = [self.interpreter(), *VLLM_SERVER, "--model", self.replica_model or ""]
        words += ["--served-model-name", self.served_name(), "--host", "{host}", "--port", "{port}"]
        if self.replica_gpus() > 1:
            words += ["--tensor-parallel-size", str(self.replica_gpus())]
        return (*words, *self.replica_args)


def _directive(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not _DIRECTIVE_VALUE.match(value):
        raise InvalidSpecError(f"--{name} {value!r}: only letters, digits and _.:,@%+=/-[] are allowed")
    return value


def _validate(spec: SlurmJobSpec) -> None:
    if spec.nodes < 1:
        raise InvalidSpecError(f"--nodes must be at least 1, not {spec.nodes}")
    if spec.gpus_per_node < 0:
        raise InvalidSpecError(f"--gpus-per-node must not be negative, not {spec.gpus_per_node}")
    if spec.mode == "embedded" and spec.nodes != 1:
        raise InvalidSpecError("--mode embedded runs one process: use --nodes 1")
    for name, port in (("port", spec.port), ("ray-port", spec.ray_port)):
        if not 0 < port < 65536:
            raise InvalidSpecError(f"--{name} {port} is not a TCP port")
    if spec.ready_timeout_s < 1:
        raise InvalidSpecError("--ready-timeout must be positive")
    for key, _ in spec.env:
        if not _ENV_NAME.match(key):
            raise InvalidSpecError(f"--env {key!r}: not a shell variable name")
    if "/" in spec.url_file or not spec.url_file:
        raise InvalidSpecError(f"--url-file {spec.url_file!r} must be a plain file name")
    if spec.mode == "fleet":
        _validate_fleet(spec)


def _validate_fleet(spec: SlurmJobSpec) -> None:
    if spec.replicas < 1:
        raise InvalidSpecError(f"--replicas must be at least 1, not {spec.replicas}")
    if not 0 <= spec.ready_replicas <= spec.replicas:
        raise InvalidSpecError(f"--ready-replicas must be between 0 and --replicas ({spec.replicas})")
    if bool(spec.replica_model) == bool(spec.replica_command):
        raise InvalidSpecError("--mode fleet needs one of --replica-model (vLLM) or --replica-command")
    if spec.replica_command and not any("{port}" in word for word in spec.replica_command):
        raise InvalidSpecError("--replica-command must say where the server listens: put {port} in it")
    if spec.replica_args and not spec.replica_model:
        raise InvalidSpecError("--replica-arg adds to vLLM's command: with --replica-command, write it there")
    if not spec.served_name():
        raise InvalidSpecError("--served-model-name is needed with --replica-command")
    if spec.cpus_per_replica is not None and spec.cpus_per_replica < 1:
        raise InvalidSpecError(f"--cpus-per-replica must be at least 1, not {spec.cpus_per_replica}")
    if not 0 <= spec.replica_gpus() <= spec.gpus_per_node:
        raise InvalidSpecError(
            f"--gpus-per-replica {spec.replica_gpus()} must be between 0 and --gpus-per-node "
            f"({spec.gpus_per_node})"
        )


def _command(*words: str) -> str:
    return shlex.join(words)


def _wrap(spec: SlurmJobSpec) -> str:
    """The prefix that runs a command inside the image (with a trailing space), or nothing."""
    if not spec.image:
        return ""
    words = ["apptainer", "exec"]
    if spec.gpus_per_node > 0:
        words.append("--nv")
    for bind in spec.binds:
        words += ["--bind", bind]
    words.append(spec.image)
    return _command(*words) + " "


def render_sbatch(spec: SlurmJobSpec) -> str:
    """The sbatch script for ``spec``."""
    import jinja2

    _validate(spec)
    python = spec.interpreter()
    wrap = _wrap(spec)
    ray = _command(python, "-m", "ray.scripts.scripts")
    # Inner words stay unexpanded until bash -c runs on each worker node.
    worker = (
        f'exec {wrap}{ray} start --address="$ray_address" --block '
        f'--num-cpus="$SLURM_CPUS_ON_NODE" --num-gpus={spec.gpus_per_node} --disable-usage-stats'
    )
    if spec.host is None:
        gateway_host = url_host = '"$head_addr"'
    else:
        gateway_host = shlex.quote(spec.host)
        url_host = '"$head_addr"' if spec.host in WILDCARD_HOSTS else gateway_host
    config_arg = f" --config {shlex.quote(str(spec.config.resolve()))}" if spec.config else ""
    summary = f"{spec.nodes} node(s), {spec.gpus_per_node} GPU(s) per node, mode {spec.mode}"
    if spec.mode == "fleet":
        summary += f", {spec.replicas} replica(s) of {spec.served_name()}"
    text = resources.files(__package__).joinpath(TEMPLATE).read_text()
    template = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # shell, not HTML: values are shell-quoted above
        comment_start_string="{##",  # bash's ${#array[@]} would open a Jinja comment
        comment_end_string="##}",
    ).from_string(text)
    return template.render(
        summary=summary,
        job_name=_directive("job-name", spec.job_name),
        nodes=spec.nodes,
        gpus_per_node=spec.gpus_per_node,
        log_file=_directive("log", spec.log_file),
        exclusive=spec.exclusive,
        partition=_directive("partition", spec.partition),
        time_limit=_directive("time", spec.time_limit),
        account=_directive("account", spec.account),
        workdir=_directive("workdir", str(spec.workdir.resolve())) if spec.workdir else None,
        env_exports=[f"{key}={shlex.quote(value)}" for key, value in spec.env],
        url_file=shlex.quote(spec.url_file),
        head_address=shlex.quote(spec.head_address) if spec.head_address else None,
        gateway_host=gateway_host,
        url_host=url_host,
        mode=spec.mode,
        ray_port=spec.ray_port,
        step_gres=f" --gres=gpu:{spec.gpus_per_node}" if spec.gpus_per_node > 0 else "",
        ray_head_options="" if spec.dashboard else " --include-dashboard=false",
        port=spec.port,
        wrap=wrap,
        ray=ray,
        worker_command=shlex.quote(worker),
        probe=_command(python, "-m", "ray_cluster.slurm_probe"),
        aihub=_command(python, "-m", "aihub.cli"),
        config_arg=config_arg,
        ready_timeout=spec.ready_timeout_s,
        **_fleet_values(spec, python),
    )


def _fleet_values(spec: SlurmJobSpec, python: str) -> dict[str, object]:
    """The fleet's pieces of the script (rendered in every mode, used in fleet mode only)."""
    gpus = spec.replica_gpus()
    # CPU replicas share the node with the gateway (--overlap) and may use all of its CPUs, as the Ray
    # steps do; GPU replicas ask for their own GPUs and their share of the CPUs (--exact, no overlap), so
    # Slurm gives each its own devices and holds back those that do not fit yet: they join when they start.
    if spec.cpus_per_replica is not None:
        cpus = str(spec.cpus_per_replica)
    elif gpus:
        share = f"SLURM_CPUS_ON_NODE * {gpus} / {spec.gpus_per_node}"
        cpus = f"$(( {share} > 0 ? {share} : 1 ))"
    else:
        cpus = '"$SLURM_CPUS_ON_NODE"'
    step = 'srun --nodes=1 --ntasks=1 --cpus-per-task="$replica_cpus"'
    step += f" --gres=gpu:{gpus} --exact" if gpus else " --overlap"
    replica = [python, "-m", "ray_cluster.fleet_replica", "--model-id", spec.served_name()]
    if spec.replica_host:
        replica += ["--host", spec.replica_host]
    base = f" --base {shlex.quote(str(spec.config.resolve()))}" if spec.config else ""
    return {
        "replicas": spec.replicas,
        "replica_cpus": cpus,
        "ready_replicas": spec.ready_replicas,
        "served_name": shlex.quote(spec.served_name()),
        "replica_step": step,
        "replica": _command(*replica),
        "server_command": _command(*spec.server_command()),
        "fleet": _command(python, "-m", "ray_cluster.fleet"),
        "fleet_base_arg": base,
    }


def write_sbatch(spec: SlurmJobSpec, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_sbatch(spec))
    path.chmod(0o755)
    return path


def submit(script: Path, *, sbatch: Sequence[str] = ("sbatch",), cwd: Path | None = None) -> str:
    """Submit ``script`` with sbatch; returns the job id."""
    command = [*sbatch, "--parsable", str(script)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)
    except FileNotFoundError as exc:
        message = f"{sbatch[0]} not found: is this a Slurm login node?"
        raise AihubError(message, code="sbatch_missing") from exc
    except subprocess.TimeoutExpired as exc:
        raise AihubError(f"{shlex.join(command)} did not answer in 120 s", code="sbatch_failed") from exc
    if done.returncode != 0:
        raise AihubError(
            f"{shlex.join(command)} failed ({done.returncode}): {done.stderr.strip()}", code="sbatch_failed"
        )
    # --parsable prints "jobid" or "jobid;cluster".
    job_id = done.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise AihubError(f"sbatch printed no job id: {done.stdout!r}", code="sbatch_failed")
    logger.info("submitted %s as job %s", script, job_id)
    return job_id
