"""`aihub cluster`: launch aihub on an HPC cluster (Slurm today)."""

from __future__ import annotations

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
        str, typer.Option(help="ray: `aihub serve --ray` on a Ray cluster; embedded: plain `aihub serve`.")
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
    output: Annotated[Path, typer.Option(help="Where to write the sbatch script.")] = Path("aihub.sbatch"),
    submit: Annotated[bool, typer.Option(help="Submit it with sbatch and print the job id.")] = False,
) -> None:
    """Write an sbatch script: Ray head and workers in the allocation, then the gateway on the head."""
    from ray_cluster.slurm import SlurmJobSpec, write_sbatch
    from ray_cluster.slurm import submit as submit_job

    if mode not in ("ray", "embedded"):
        raise typer.BadParameter(f"{mode!r}: choose ray or embedded", param_hint="--mode")
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
        mode="ray" if mode == "ray" else "embedded",
        job_name=job_name,
        workdir=workdir,
        url_file=url_file,
        ready_timeout_s=ready_timeout,
        exclusive=exclusive,
        dashboard=dashboard,
        python=python,
        binds=tuple(bind or ()),
        env=_env_pairs(env or []),
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
