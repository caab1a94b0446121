"""`aihub hub …`: push, list, show, tag, lock, verify, gc, export/import and copy artifacts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from aihub.cli_errors import clean_errors
from core.errors import InvalidSpecError

hub_app = typer.Typer(
    help="The artifact hub: a local OCI layout, shared through OCI registries.", no_args_is_help=True
)
err = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@hub_app.callback()
def _main(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option(help="aihub's data folder (default: AIHUB_HOME or ~/.aihub).")
    ] = None,
) -> None:
    from hub.settings import HubSettings

    ctx.obj = HubSettings(home=home) if home is not None else HubSettings()


def _store(ctx: typer.Context) -> Any:
    from hub.store import LocalStore

    return LocalStore(ctx.obj)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr for large transfers; silent for small ones."""
    if total < 32 * 1024 * 1024:
        yield lambda _count: None
        return
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda count: progress.advance(task, count)


def _artifact_dict(artifact: Any) -> dict[str, Any]:
    return {
        "name": artifact.name,
        "kind": artifact.kind,
        "digest": artifact.digest,
        "tags": list(artifact.tags),
        "created": artifact.created,
        "size": artifact.size,
        "spec": dict(artifact.spec),
    }


@hub_app.command()
@clean_errors
def push(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="The artifact's YAML spec.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Tag(s); default: the file's tags.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a spec, pin its references and store it with its files; prints the digest."""
    from hub.spec_file import load_spec_file

    loaded = load_spec_file(spec_file)
    store = _store(ctx)
    total = sum(path.stat().st_size for path in loaded.files.values())
    with _progress(total, f"push {loaded.name}") as advance:
        artifact = store.push(
            loaded.kind, loaded.name, loaded.spec, loaded.files, tag or loaded.tags, progress=advance
        )
    if as_json:
        _print_json(_artifact_dict(artifact))
    else:
        typer.echo(artifact.digest)


@hub_app.command("ls")
@clean_errors
def list_artifacts(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tagged artifacts."""
    from hub.specs import check_kind

    artifacts = _store(ctx).list(check_kind(kind) if kind else None)
    if as_json:
        _print_json([_artifact_dict(a) for a in artifacts])
        return
    table = Table("name", "tags", "kind", "digest", "size", "created")
    for a in artifacts:
        table.add_row(a.name, ", ".join(a.tags), a.kind, a.digest[:19], f"{a.size:,}", a.created or "")
    Console().print(table)


@hub_app.command()
@clean_errors
def show(ctx: typer.Context, ref: str, as_json: JsonOpt = False) -> None:
    """An artifact's spec, layers and referrers (eval reports attached to it)."""
    store = _store(ctx)
    artifact = store.resolve(ref)
    manifest = store.manifest(artifact.digest)
    referrers = store.referrers(artifact.digest)
    data = _artifact_dict(artifact)
    data["artifactType"] = manifest.raw.get("artifactType")
    data["subject"] = manifest.subject
    data["layers"] = [
        {"path": x.path, "mediaType": x.media_type, "digest": x.digest, "size": x.size}
        for x in manifest.layers
    ]
    data["referrers"] = [
        {"name": r.name, "kind": r.kind, "digest": r.digest, "tags": list(r.tags)} for r in referrers
    ]
    if as_json:
        _print_json(data)
        return
    console = Console()
    console.print(
        f"[bold]{artifact.name}[/] ({artifact.kind}) {artifact.digest}"
        f"  tags: {', '.join(artifact.tags) or '-'}"
    )
    if manifest.subject:
        console.print(f"subject: {manifest.subject}")
    console.print_json(json.dumps(data["spec"], sort_keys=True))
    if manifest.layers:
        table = Table("file", "media type", "digest", "size", title="layers")
        for layer in manifest.layers:
            table.add_row(layer.path, layer.media_type, layer.digest[:19], f"{layer.size:,}")
        console.print(table)
    if referrers:
        table = Table("name", "kind", "digest", "tags", title="referrers")
        for r in referrers:
            table.add_row(r.name, r.kind, r.digest, ", ".join(r.tags))
        console.print(table)


@hub_app.command()
@clean_errors
def tag(ctx: typer.Context, ref: str, new_ref: str, as_json: JsonOpt = False) -> None:
    """Point NEW_REF (name:tag) at the artifact REF resolves to."""
    artifact = _store(ctx).tag(ref, new_ref)
    if as_json:
        _print_json(_artifact_dict(artifact))
    else:
        typer.echo(f"{new_ref} -> {artifact.digest}")


@hub_app.command()
@clean_errors
def untag(ctx: typer.Context, ref: str) -> None:
    """Remove a tag (blobs stay until `gc`, and stay while anything references them)."""
    _store(ctx).untag(ref)
    err.print(f"untagged {ref}")


@hub_app.command()
@clean_errors
def lock(ctx: typer.Context, ref: str, as_json: JsonOpt = False) -> None:
    """The whole composition of REF with digests, and its composition digest."""
    from hub.lock import resolve_lock

    resolved = resolve_lock(_store(ctx), ref)
    if as_json:
        _print_json(resolved.to_dict())
        return
    table = Table("name", "kind", "digest", "references", title=f"lock of {ref}")
    for entry in resolved.entries:
        refs = ", ".join(f"{path}={digest[:19]}" for path, digest in sorted(entry.references.items()))
        table.add_row(entry.name, entry.kind, entry.digest, refs)
    Console().print(table)
    typer.echo(f"composition digest: {resolved.composition_digest}")


@hub_app.command()
@clean_errors
def verify(
    ctx: typer.Context, ref: Annotated[str | None, typer.Argument()] = None, as_json: JsonOpt = False
) -> None:
    """Re-hash blobs (and unpacked copies); exit status 1 on any corruption."""
    from hub.verify import verify_store

    report = verify_store(_store(ctx), ref)
    if as_json:
        _print_json(
            {
                "ok": report.ok,
                "checked_blobs": report.checked_blobs,
                "checked_manifests": report.checked_manifests,
                "problems": report.problems,
            }
        )
    else:
        for problem in report.problems:
            err.print(f"[red]corrupt:[/] {problem}", highlight=False, soft_wrap=True)
        typer.echo(
            f"checked {report.checked_manifests} manifests, {report.checked_blobs} blobs: "
            + ("ok" if report.ok else f"{len(report.problems)} problems")
        )
    if not report.ok:
        raise typer.Exit(1)


@hub_app.command()
@clean_errors
def gc(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Remove blobs no tagged artifact (or what it references or has attached) needs."""
    from aihub.file_services import uploaded_blobs
    from hub.gc import collect
    from ray_cluster.config import load_config

    # Uploaded files (/v1/files) are blobs no artifact references: the gateway database keeps them.
    keep = uploaded_blobs(load_config(None, {"app": {"home": ctx.obj.home}}))
    report = collect(_store(ctx), keep)
    if as_json:
        _print_json(vars(report))
    else:
        typer.echo(
            f"removed {report.removed_blobs} blobs ({report.freed_bytes:,} bytes), "
            f"{report.removed_unpacked} unpacked copies, {report.removed_temp_files} temp files"
        )


@hub_app.command("export")
@clean_errors
def export_cmd(ctx: typer.Context, ref: str, file: Path, as_json: JsonOpt = False) -> None:
    """Write REF and everything it references to an OCI layout tar (air-gapped transfer)."""
    from hub.archive import export_archive

    report = export_archive(_store(ctx), ref, file)
    _report(report, as_json, f"exported {report.artifacts} artifacts, {report.blobs} blobs to {file}")


@hub_app.command("import")
@clean_errors
def import_cmd(ctx: typer.Context, file: Path, as_json: JsonOpt = False) -> None:
    """Read an OCI layout tar written by `export`; every blob is verified."""
    from hub.archive_import import import_archive

    report = import_archive(_store(ctx), file)
    _report(report, as_json, f"imported {report.artifacts} artifacts, {report.blobs} new blobs from {file}")


@hub_app.command("import-model")
@clean_errors
def import_model(
    ctx: typer.Context,
    name: str,
    folder: Path,
    context_length: Annotated[
        int | None, typer.Option(help="The model's context length in tokens (adapters: the base's).")
    ] = None,
    adapter_of: Annotated[
        str | None,
        typer.Option("--adapter-of", help="Import a PEFT LoRA adapter folder bound to this base model."),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a Hugging Face model folder (or, with --adapter-of, a LoRA adapter) as a model artifact."""
    from hub.adapter_import import import_adapter_folder
    from hub.model_import import import_model_folder, model_files

    store = _store(ctx)
    tags = tag or ("latest",)
    total = sum(path.stat().st_size for path in model_files(folder).values()) if folder.is_dir() else 0
    with _progress(total, f"import {name}") as advance:
        if adapter_of is not None:
            artifact = import_adapter_folder(
                store, name, folder, base=adapter_of, tags=tags, progress=advance
            )
        elif context_length is None:
            raise InvalidSpecError("--context-length is required when importing a model")
        else:
            artifact = import_model_folder(
                store, name, folder, context_length=context_length, tags=tags, progress=advance
            )
    if as_json:
        _print_json(_artifact_dict(artifact))
    else:
        typer.echo(artifact.digest)


@hub_app.command()
@clean_errors
def copy(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(help="A local reference or oci://HOST:PORT/REPO:TAG.")],
    dst: Annotated[str, typer.Argument(help="A local reference or oci://HOST:PORT/REPO:TAG.")],
    all_tags: Annotated[
        bool, typer.Option("--all", help="Mirror every tagged artifact under a namespace.")
    ] = False,
    username: Annotated[str | None, typer.Option(help="Registry user (default: docker config).")] = None,
    password: Annotated[str | None, typer.Option(help="Registry password.")] = None,
    plain_http: Annotated[
        bool | None, typer.Option("--plain-http/--tls", help="Default: plain HTTP on loopback only.")
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--ca-cert",
            help="CA bundle (PEM) to verify the registry's TLS certificate (implies --tls; "
            "default: AIHUB_CA_CERT, else the system CAs).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy an artifact with everything it references, to or from an OCI registry."""
    from hub.copy_command import run_copy

    report = run_copy(
        _store(ctx),
        ctx.obj,
        src,
        dst,
        all_tags=all_tags,
        username=username,
        password=password,
        plain_http=plain_http,
        ca_cert=ca_cert,
        progress_factory=_progress,
    )
    _report(
        report,
        as_json,
        f"copied {len(report.artifacts)} artifacts: {report.blobs_sent} blobs sent "
        f"({report.bytes_sent:,} bytes), {report.blobs_skipped} already there",
    )


def _report(report: Any, as_json: bool, text: str) -> None:
    if as_json:
        _print_json(vars(report) if not hasattr(report, "_asdict") else report._asdict())
    else:
        typer.echo(text)


if __name__ == "__main__":
    hub_app()
