"""Slurm launch: an sbatch script that starts a Ray cluster inside the allocation and the gateway on it.

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

Mode = Literal["ray", "embedded"]


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

    def interpreter(self) -> str:
        if self.python is not None:
            return self.python
        return "python3" if self.image else sys.executable


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
    )


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
