"""`aihub cluster`: launch aihub on an HPC cluster (Slurm today)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

cluster_app = typer.Typer(
    help="Launch aihub on a cluster: `aihub cluster slurm …` writes an sbatch script.",
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@cluster_app.callback()
def _cluster() -> None:
    """Launch aihub on a cluster."""


def _env_pairs(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            raise typer.BadParameter(f"{value!r}: expected KEY=VALUE", param_hint="--env")
        pairs.append((key, rest))
    return tuple(pairs)


def _model_path(value: str | None) -> str | None:
    """A local folder as an absolute path (the job runs elsewhere); anything else is a model name."""
    if value is None or not Path(value).exists():
        return value
    return str(Path(value).resolve())


def _split(command: str | None) -> tuple[str, ...]:
    if command is None:
        return ()
    try:
        return tuple(shlex.split(command))
    except ValueError as exc:
        raise typer.BadParameter(f"{command!r}: {exc}", param_hint="--replica-command") from None


@cluster_app.command()
def slurm(
    nodes: Annotated[int, typer.Option(help="Nodes in the allocation: one Ray head, the rest workers.")] = 1,
    gpus_per_node: Annotated[int, typer.Option(help="GPUs per node (0: CPU only, no --nv).")] = 0,
    image: Annotated[
        str | None, typer.Option(help="Apptainer image (.sif): every command runs inside it.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="aihub config file (cluster.yaml).")] = None,
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    time: Annotated[str | None, typer.Option("--time", help="Slurm time limit, e.g. 04:00:00.")] = None,
    account: Annotated[str | None, typer.Option(help="Slurm account to charge.")] = None,
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8000,
    ray_port: Annotated[int, typer.Option(help="Ray head (GCS) port.")] = 6379,
    host: Annotated[
        str | None, typer.Option(help="Gateway bind address (default: the head node's address).")
    ] = None,
    head_address: Annotated[
        str | None, typer.Option(help="Head node address for Ray and clients (default: `hostname -i`).")
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="ray: `aihub serve --ray` on a Ray cluster; embedded: plain `aihub serve`; "
            "fleet: --replicas server steps behind a gateway that follows them as they join and leave."
        ),
    ] = "ray",
    job_name: Annotated[str, typer.Option(help="Slurm job name.")] = "aihub",
    workdir: Annotated[
        Path | None, typer.Option(help="Job working directory (log, URL file); default: where sbatch runs.")
    ] = None,
    url_file: Annotated[str, typer.Option(help="File in the working directory that gets the URL.")] = (
        "aihub-gateway.url"
    ),
    ready_timeout: Annotated[int, typer.Option(help="Seconds to wait for Ray nodes and the gateway.")] = 900,
    exclusive: Annotated[bool, typer.Option(help="Ask for whole nodes.")] = True,
    dashboard: Annotated[bool, typer.Option(help="Start Ray's dashboard on the head node.")] = True,
    python: Annotated[
        str | None, typer.Option(help="Python with aihub (default: python3 in the image, else this one).")
    ] = None,
    bind: Annotated[list[str] | None, typer.Option(help="Apptainer --bind SRC[:DST] (repeatable).")] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE exported in the job (repeatable).")] = None,
    replicas: Annotated[int, typer.Option(help="Fleet: server steps to start.")] = 1,
    replica_model: Annotated[
        str | None, typer.Option(help="Fleet: vLLM's --model for each replica (a folder or a model name).")
    ] = None,
    served_model_name: Annotated[
        str | None, typer.Option(help="Fleet: the model id clients use (default: the model's last part).")
    ] = None,
    replica_command: Annotated[
        str | None,
        typer.Option(
            help="Fleet: a server command instead of vLLM's, with {host} and {port} where it binds, e.g. "
            "'python -m aihub.cli serve --config c.yaml --host {host} --port {port}'."
        ),
    ] = None,
    replica_arg: Annotated[
        list[str] | None, typer.Option(help="Fleet: one more word for vLLM's command line (repeatable).")
    ] = None,
    replica_host: Annotated[
        str | None, typer.Option(help="Fleet: replicas' bind address (default: each one's node address).")
    ] = None,
    cpus_per_replica: Annotated[
        int | None,
        typer.Option(help="Fleet: CPUs of each replica step (default: the node's, split by GPUs)."),
    ] = None,
    gpus_per_replica: Annotated[
        int | None, typer.Option(help="Fleet: GPUs of each replica step (default: 1 on GPU nodes).")
    ] = None,
    ready_replicas: Annotated[
        int, typer.Option(help="Fleet: replicas that must have joined before the URL is published.")
    ] = 1,
    output: Annotated[Path, typer.Option(help="Where to write the sbatch script.")] = Path("aihub.sbatch"),
    submit: Annotated[bool, typer.Option(help="Submit it with sbatch and print the job id.")] = False,
) -> None:
    """Write an sbatch script: the gateway on the batch node, on Ray, embedded, or fronting a fleet."""
    from ray_cluster.slurm import SlurmJobSpec, write_sbatch
    from ray_cluster.slurm import submit as submit_job

    if mode not in ("ray", "embedded", "fleet"):
        raise typer.BadParameter(f"{mode!r}: choose ray, embedded or fleet", param_hint="--mode")
    if mode != "fleet" and (replica_model or replica_command):
        raise typer.BadParameter("only --mode fleet starts replicas", param_hint="--mode")
    spec = SlurmJobSpec(
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        image=image,
        config=config,
        partition=partition,
        time_limit=time,
        account=account,
        port=port,
        ray_port=ray_port,
        host=host,
        head_address=head_address,
        mode="ray" if mode == "ray" else "fleet" if mode == "fleet" else "embedded",
        job_name=job_name,
        workdir=workdir,
        url_file=url_file,
        ready_timeout_s=ready_timeout,
        exclusive=exclusive,
        dashboard=dashboard,
        python=python,
        binds=tuple(bind or ()),
        env=_env_pairs(env or []),
        replicas=replicas,
        replica_model=_model_path(replica_model),
        served_model_name=served_model_name,
        replica_command=_split(replica_command),
        replica_args=tuple(replica_arg or ()),
        replica_host=replica_host,
        cpus_per_replica=cpus_per_replica,
        gpus_per_replica=gpus_per_replica,
        ready_replicas=ready_replicas,
    )
    script = write_sbatch(spec, output)
    console.print(f"wrote {script}")
    if submit:
        job_id = submit_job(script.resolve(), cwd=workdir)
        console.print(f"submitted job {job_id}; the gateway URL will appear in {url_file}")
        typer.echo(job_id)


def main() -> None:
    """Runnable on its own (`python -m aihub.cluster_cli slurm …`), as well as mounted under `aihub`."""
    from core.errors import AihubError

    try:
        cluster_app()
    except AihubError as exc:
        console.print(f"[red]error:[/] {exc.message}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
