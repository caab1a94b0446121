"""Pinning an evaluation: the target and dataset resolved to digests once, with the target's full lock.

A ``RunPlan`` is what makes two runs comparable: the same plan (``identity()``) gives the same
requests, so at temperature 0 the same numbers, at any hub that holds the same digests.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.errors import InvalidRequestError, InvalidSpecError
from core.refs import ArtifactRef
from core.store import Artifact
from evals.datasets import EvalDataset, load_artifact
from evals.retrieval_eval import CHUNK_DEPTH, RUN_DEPTH
from hub.lock import resolve_lock
from hub.store import LocalStore

# Model-id prefixes of compositions and the hub namespace a bare name lives in (as the gateway maps them).
COMPOSITION_PREFIXES = {"rag/": ("pipeline", "pipelines"), "agent/": ("agent", "agents")}
PREFIX_OF_KIND = {"pipeline": "rag/", "agent": "agent/"}
TARGET_KINDS = ("pipeline", "agent", "model", "index")
RETRIEVAL_METRICS = ("ndcg@10", "recall@100", "mrr@10")
ANSWER_METRICS = ("exact_match", "f1", "citation_recall", "refusal_rate")
DEFAULT_MAX_TOKENS = 128


@dataclass(frozen=True)
class EngineSettings:
    """What each chat request carries: greedy decoding, a fixed seed and token budget."""

    temperature: float = 0.0
    max_tokens: int = DEFAULT_MAX_TOKENS
    top_p: float = 1.0
    seed: int = 0

    def request_params(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PinnedTarget:
    ref: str  # as asked for
    kind: str
    name: str
    digest: str
    model_id: str | None  # the gateway model id, pinned (``rag/name@sha256:…``); None for an index
    vector_stores: tuple[str, ...]  # pinned index references retrieval goes through

    @property
    def pinned_ref(self) -> str:
        return f"{self.name}@{self.digest}"


@dataclass(frozen=True)
class PinnedDataset:
    ref: str
    name: str
    digest: str
    split: str | None = None

    @property
    def pinned_ref(self) -> str:
        return f"{self.name}@{self.digest}"


@dataclass(frozen=True)
class RunPlan:
    target: PinnedTarget
    dataset: PinnedDataset
    lock: Mapping[str, Any]  # hub.lock.Lock.to_dict()
    composition_digest: str
    engine: EngineSettings
    metrics: tuple[str, ...]
    search_limit: int = RUN_DEPTH  # documents kept per query
    search_depth: int = CHUNK_DEPTH  # chunks asked of the gateway per query, merged into documents
    aihub_version: str = field(default_factory=lambda: aihub_version())

    def identity(self) -> dict[str, Any]:
        """Everything that decides the numbers; names and the ``ref`` as typed are left out."""
        return {
            "target": self.target.digest,
            "model_id_digest": self.target.model_id.rsplit("@", 1)[-1] if self.target.model_id else None,
            "dataset": self.dataset.digest,
            "split": self.dataset.split,
            "composition_digest": self.composition_digest,
            "lock": self.lock.get("lock"),
            "engine": asdict(self.engine),
            "metrics": list(self.metrics),
            "search_limit": self.search_limit,
            "search_depth": self.search_depth,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"]["vector_stores"] = list(self.target.vector_stores)
        data["metrics"] = list(self.metrics)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunPlan:
        target = dict(data["target"])
        target["vector_stores"] = tuple(target.get("vector_stores") or ())
        return cls(
            target=PinnedTarget(**target),
            dataset=PinnedDataset(**data["dataset"]),
            lock=data["lock"],
            composition_digest=data["composition_digest"],
            engine=EngineSettings(**data["engine"]),
            metrics=tuple(data["metrics"]),
            search_limit=int(data.get("search_limit", RUN_DEPTH)),
            search_depth=int(data.get("search_depth", CHUNK_DEPTH)),
            aihub_version=str(data.get("aihub_version", "")),
        )


def aihub_version() -> str:
    try:
        return importlib.metadata.version("aihub")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def hub_reference(target: str) -> tuple[ArtifactRef, str | None]:
    """``rag/support:prod`` → (pipelines/support:prod, "rag/"); a plain hub reference → (it, None)."""
    for prefix, (_, namespace) in COMPOSITION_PREFIXES.items():
        if target.startswith(prefix):
            rest = target[len(prefix) :]
            bare = rest.split("@", 1)[0].rsplit(":", 1)[0]
            return ArtifactRef.parse(rest if "/" in bare else f"{namespace}/{rest}"), prefix
    return ArtifactRef.parse(target), None


def _indices(artifact: Artifact) -> tuple[str, ...]:
    spec = artifact.spec
    if artifact.kind == "pipeline":
        return tuple(spec.get("indices") or ())
    if artifact.kind == "agent":
        return tuple(t["index"] for t in spec.get("tools") or () if t.get("index"))
    if artifact.kind == "index":
        return (artifact.pinned_ref,)
    return ()


def pin_target(store: LocalStore, target: str, served_model: str | None = None) -> PinnedTarget:
    ref, prefix = hub_reference(target)
    artifact = store.resolve(ref)
    if artifact.kind not in TARGET_KINDS:
        raise InvalidRequestError(
            f"{target} is a {artifact.kind}; evaluate a pipeline, agent, model or index", param="target"
        )
    if prefix is not None and COMPOSITION_PREFIXES[prefix][0] != artifact.kind:
        raise InvalidRequestError(f"{target} names a {artifact.kind}", param="target")
    model_id: str | None = None
    if artifact.kind in PREFIX_OF_KIND:
        short = target[len(prefix) :].split("@", 1)[0].rsplit(":", 1)[0] if prefix else artifact.name
        model_id = f"{PREFIX_OF_KIND[artifact.kind]}{short}@{artifact.digest}"
    elif artifact.kind == "model":
        # A plain model is served under an engine id, not a digest: the lock still pins its weights.
        model_id = served_model or artifact.name.rsplit("/", 1)[-1]
    return PinnedTarget(target, artifact.kind, artifact.name, artifact.digest, model_id, _indices(artifact))


def pin_dataset(store: LocalStore, dataset: str, split: str | None) -> tuple[PinnedDataset, Artifact]:
    artifact = store.resolve(dataset)
    if artifact.kind != "dataset":
        raise InvalidSpecError(f"{dataset} is a {artifact.kind}, not a dataset")
    return PinnedDataset(dataset, artifact.name, artifact.digest, split), artifact


def parse_metrics(text: str | None, defaults: Sequence[str]) -> tuple[str, ...]:
    if not text:
        return tuple(defaults)
    known_answer = set(ANSWER_METRICS)
    chosen = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        base, _, k = name.partition("@")
        if name in known_answer or (base in ("ndcg", "recall", "mrr") and k.isdigit() and int(k) > 0):
            chosen.append(name)
        else:
            raise InvalidRequestError(
                f"unknown metric {raw!r}: use ndcg@K, recall@K, mrr@K, " + ", ".join(ANSWER_METRICS),
                param="metrics",
            )
    return tuple(dict.fromkeys(chosen))


def make_plan(
    store: LocalStore,
    target: str,
    dataset: str,
    *,
    split: str | None = None,
    metrics: str | None = None,
    engine: EngineSettings | None = None,
    served_model: str | None = None,
    search_limit: int = RUN_DEPTH,
    search_depth: int = CHUNK_DEPTH,
) -> tuple[RunPlan, EvalDataset]:
    """Resolve everything once: later requests name only digests. Also reads the dataset's files."""
    pinned_target = pin_target(store, target, served_model)
    pinned_dataset, dataset_artifact = pin_dataset(store, dataset, split)
    loaded = load_artifact(store, dataset_artifact, split)
    lock = resolve_lock(store, pinned_target.pinned_ref)
    plan = RunPlan(
        target=pinned_target,
        dataset=replace(pinned_dataset, split=loaded.split),
        lock=lock.to_dict(),
        composition_digest=lock.composition_digest,
        engine=engine or EngineSettings(),
        metrics=parse_metrics(metrics, (*RETRIEVAL_METRICS, *ANSWER_METRICS)),
        search_limit=search_limit,
        search_depth=search_depth,
    )
    return plan, loaded
