"""What every spec shares: strict fields, reference fields (pinned to digests on push), file lists."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.errors import InvalidReferenceError
from core.refs import ArtifactRef
from core.store import ArtifactKind

RefPath = tuple[str | int, ...]
Reference = tuple[RefPath, str, tuple[ArtifactKind, ...]]


def _check_ref(value: str) -> str:
    try:
        ArtifactRef.parse(value)
    except InvalidReferenceError as exc:
        raise ValueError(exc.message) from None
    return value


def _check_relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"file {value!r} must be a relative path inside the spec's folder")
    return str(path)


Ref = Annotated[str, AfterValidator(_check_ref)]
RelativePath = Annotated[str, AfterValidator(_check_relative_path)]


class SpecBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # field name → kinds it may refer to; a field holds a reference, a list of them, or None.
    REFERENCE_FIELDS: ClassVar[dict[str, tuple[ArtifactKind, ...]]] = {}

    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def references(self) -> list[Reference]:
        found: list[Reference] = []
        for field, kinds in self.REFERENCE_FIELDS.items():
            value = getattr(self, field)
            if isinstance(value, str):
                found.append(((field,), value, kinds))
            elif isinstance(value, list | tuple):
                found.extend(((field, i), item, kinds) for i, item in enumerate(value))
        return found

    def file_paths(self) -> list[str]:
        files = getattr(self, "files", None)
        return list(files) if files else []


def set_at(data: dict[str, Any], path: RefPath, value: str) -> None:
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
