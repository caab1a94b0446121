"""What the web console shows of the hub: the listing, an artifact's versions, a lock as a graph, a diff.

Plain functions over ``core.store`` protocols, returning JSON-ready dicts; ``gateway.routers.console``
serves them under ``/ui/api``.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import ArtifactNotFoundError, InvalidRequestError
from core.store import Artifact, ArtifactStore, BrowsableStore, TagEntry

# The headline figures shown beside an eval report, when present (others are listed after them).
HEADLINE_ORDER = ("ndcg@10", "recall@10", "mrr@10", "exact_match", "f1", "faithfulness")


def namespace_of(name: str) -> str:
    return name.rpartition("/")[0]


def _newest_first(entries: Sequence[TagEntry]) -> list[TagEntry]:
    """``latest`` first, then by when each tag was set (the index keeps no push time per version)."""
    return sorted(entries, key=lambda e: (e.tag == "latest", e.created or "", e.tag), reverse=True)


def list_artifacts(
    store: BrowsableStore,
    kind: str | None = None,
    namespace: str | None = None,
    query: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Tagged artifacts grouped by name, from the index alone (no manifest is opened); the first
    ``limit`` of them, with ``total`` saying how many matched."""
    by_name: dict[str, list[TagEntry]] = defaultdict(list)
    for entry in store.tag_entries():
        by_name[entry.name].append(entry)
    needle = (query or "").strip().lower()
    kinds, namespaces, rows = set(), set(), []
    for name in sorted(by_name):
        entries = _newest_first(by_name[name])
        row_kind, row_namespace = entries[0].kind, namespace_of(name)
        kinds.add(row_kind)
        namespaces.add(row_namespace)
        if (kind and row_kind != kind) or (namespace and row_namespace != namespace):
            continue
        if needle and needle not in name.lower() and not any(needle in e.tag.lower() for e in entries):
            continue
        rows.append(
            {
                "name": name,
                "kind": row_kind,
                "namespace": row_namespace,
                "tags": [{"tag": e.tag, "digest": e.digest, "created": e.created} for e in entries],
                "versions": len({e.digest for e in entries}),
                "updated": entries[0].created,
            }
        )
    return {
        "object": "list",
        "data": rows[:limit] if limit else rows,
        "total": len(rows),
        "kinds": sorted(kinds),
        "namespaces": sorted(namespaces),
    }


def headline_metrics(metrics: Mapping[str, Any], count: int = 4) -> dict[str, Any]:
    ordered = [m for m in HEADLINE_ORDER if m in metrics] + sorted(
        m for m in metrics if m not in HEADLINE_ORDER
    )
    return {m: metrics[m] for m in ordered[:count]}


def referrer_view(report: Artifact) -> dict[str, Any]:
    spec = report.spec
    return {
        "name": report.name,
        "kind": report.kind,
        "digest": report.digest,
        "ref": report.pinned_ref,
        "created": report.created,
        "dataset": spec.get("dataset"),
        "composition_digest": spec.get("composition_digest"),
        "metrics": dict(spec.get("metrics") or {}),
        "headline": headline_metrics(spec.get("metrics") or {}),
    }


def version_view(store: ArtifactStore, browser: BrowsableStore, artifact: Artifact) -> dict[str, Any]:
    return {
        "digest": artifact.digest,
        "ref": artifact.pinned_ref,
        "tags": list(artifact.tags),
        "created": artifact.created,
        "size": artifact.size,
        "spec": dict(artifact.spec),
        "annotations": dict(artifact.annotations),
        "files": [
            {"path": f.path, "media_type": f.media_type, "digest": f.digest, "size": f.size}
            for f in browser.files(artifact.digest)
        ],
        "referrers": [referrer_view(r) for r in browser.referrers(artifact.digest)],
    }


def artifact_detail(store: ArtifactStore, browser: BrowsableStore, name: str) -> dict[str, Any]:
    """Every tagged version of ``name`` (newest first) with its tags, digest, size, spec, files and
    referrers. Tags are the current ones: the hub does not record where a tag pointed before."""
    entries = _newest_first([e for e in browser.tag_entries() if e.name == name])
    if not entries:
        raise ArtifactNotFoundError(f"artifact {name} not found in the hub")
    digests = list(dict.fromkeys(e.digest for e in entries))
    versions = [version_view(store, browser, store.resolve(f"{name}@{d}")) for d in digests]
    return {"name": name, "kind": entries[0].kind, "namespace": namespace_of(name), "versions": versions}


def lock_graph(browser: BrowsableStore, ref: str) -> dict[str, Any]:
    """The composition lock of ``ref`` as nodes (artifacts) and edges (spec field → referenced digest)."""
    lock = browser.lock_of(ref)
    artifacts: Mapping[str, Mapping[str, Any]] = lock["lock"]["artifacts"]
    names: Mapping[str, str] = lock["names"]
    nodes = [
        {"digest": digest, "name": names.get(digest, ""), "kind": entry["kind"]}
        for digest, entry in artifacts.items()
    ]
    edges = [
        {"source": digest, "target": target, "field": field}
        for digest, entry in artifacts.items()
        for field, target in sorted(entry.get("references", {}).items())
    ]
    return {
        "ref": ref,
        "root": lock["lock"]["root"],
        "composition_digest": lock["composition_digest"],
        "nodes": nodes,
        "edges": edges,
    }


def spec_lines(artifact: Artifact) -> list[str]:
    """A spec as diffable lines: a prompt's template line by line, then the rest as sorted JSON."""
    spec = dict(artifact.spec)
    lines: list[str] = []
    template = spec.pop("template", None) if artifact.kind == "prompt" else None
    if isinstance(template, str):
        lines += ["template:", *("  " + line for line in template.splitlines())]
    lines += json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return lines


def diff_specs(store: ArtifactStore, ref_a: str, ref_b: str) -> dict[str, Any]:
    """Line diff of two versions' specs: ``op`` is ``=`` (both), ``-`` (only A) or ``+`` (only B)."""
    a, b = store.resolve(ref_a), store.resolve(ref_b)
    if a.kind != b.kind:
        raise InvalidRequestError(f"{ref_a} is a {a.kind} and {ref_b} a {b.kind}: only one kind diffs")
    left, right = spec_lines(a), spec_lines(b)
    lines: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=left, b=right, autojunk=False).get_opcodes():
        if op == "equal":
            lines += [{"op": "=", "text": text} for text in left[i1:i2]]
            continue
        lines += [{"op": "-", "text": text} for text in left[i1:i2]]
        lines += [{"op": "+", "text": text} for text in right[j1:j2]]
    side = {"a": a, "b": b}
    return {
        **{k: {"ref": v.pinned_ref, "tags": list(v.tags), "kind": v.kind} for k, v in side.items()},
        "changed": left != right,
        "lines": lines,
    }
