"""Hand-made tar archives for import tests: members whose headers lie (huge sizes, GNU sparse files,
truncated data), written byte by byte since tarfile refuses to write them."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BLOCK = tarfile.BLOCKSIZE


def _pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def member(name: str, data: bytes, declared: int | None = None) -> bytes:
    """A regular member; ``declared`` above ``len(data)`` makes it truncated (put it last)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode = (len(data) if declared is None else declared), 0o644
    return info.tobuf(format=tarfile.GNU_FORMAT) + data + _pad(len(data))


def sparse_member(name: str, stored: bytes, real_size: int) -> bytes:
    """A GNU sparse member: ``stored`` at offset 0, then a hole up to ``real_size`` (old GNU format)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = len(stored), 0o644, tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:398] = tarfile.itn(0, 12, tarfile.GNU_FORMAT)
    header[398:410] = tarfile.itn(len(stored), 12, tarfile.GNU_FORMAT)
    header[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header[:BLOCK])
    return bytes(header) + stored + _pad(len(stored))


def write_tar(path: Path, members: Iterable[bytes], end: bool = True) -> Path:
    path.write_bytes(b"".join(members) + (b"\0" * 2 * BLOCK if end else b""))
    return path


def read_members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def rewrite(
    archive: Path,
    target: Path,
    *,
    index: Callable[[dict[str, Any]], None] | None = None,
    drop: Iterable[str] = (),
) -> Path:
    """A copy of an exported archive with its index.json edited and some members left out."""
    members = read_members(archive)
    if index is not None:
        data = json.loads(members["index.json"])
        index(data)
        members["index.json"] = json.dumps(data).encode()
    with tarfile.open(target, "w") as tar:
        for name, data in members.items():
            if name not in set(drop):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return target
