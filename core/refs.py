"""Artifact references: ``namespace/name:tag`` or ``namespace/name@sha256:<hex>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidReferenceError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
# The OCI distribution spec's name rule; clients and registries (distribution, Harbor) cap names at
# 255 characters, so a longer name could be pushed here but never mirrored.
NAME_MAX_LENGTH = 255

DEFAULT_TAG = "latest"


def check_name(name: str) -> str:
    """A repository name (``namespace/name``), refused when it carries a tag or digest."""
    parsed = ArtifactRef.parse(name)
    if parsed.name != name:
        raise InvalidReferenceError(f"{name!r} is a reference; a name has no tag or digest")
    return name


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A parsed reference. Exactly one of ``tag`` / ``digest`` is set."""

    name: str  # "namespace/name" (a repository path)
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ArtifactRef:
        if not isinstance(text, str) or not text or len(text) > 512:
            raise InvalidReferenceError(f"invalid artifact reference {text!r}")
        name, digest, tag = text, None, None
        if "@" in text:
            name, digest = text.split("@", 1)
            if not is_digest(digest):
                raise InvalidReferenceError(
                    f"invalid artifact reference {text!r}: digest must be sha256:<64 hex digits>"
                )
        else:
            head, sep, maybe_tag = text.rpartition(":")
            if sep and "/" not in maybe_tag:
                name, tag = head, maybe_tag
                if not _TAG_RE.match(tag):
                    raise InvalidReferenceError(f"invalid artifact reference {text!r}: bad tag {tag!r}")
            else:
                tag = DEFAULT_TAG
        if len(name) > NAME_MAX_LENGTH:
            raise InvalidReferenceError(
                f"invalid artifact reference {name[:40]!r}…: the name has {len(name)} characters; "
                f"OCI registries allow at most {NAME_MAX_LENGTH}"
            )
        if not _NAME_RE.match(name):
            raise InvalidReferenceError(
                f"invalid artifact reference {text!r}: name must be lowercase path components "
                "like 'namespace/name'"
            )
        return cls(name=name, tag=tag, digest=digest)

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}"

    def with_digest(self, digest: str) -> ArtifactRef:
        return ArtifactRef(name=self.name, digest=digest)
