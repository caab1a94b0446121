"""The key that hashes API key secrets (HMAC-SHA256): one file, made on first use, mode 0600.

Every gateway that shares a tenancy database needs the same file: a key hashed by one must verify on
the others. The file holds 32 random bytes as hex; an operator may put any longer secret there instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from core.errors import InvalidSpecError

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``; a new random one, written there first, when the file does not exist."""
    path = path.expanduser()
    if not path.exists():
        _create(path)
    return _read(path)


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Readable by others: whoever reads it can forge key hashes for a stolen database. Said, not
        # refused, so that a shared read-only mount (all gateways of a site) still starts.
        logger.warning("%s is accessible to group/others (mode %o); chmod 600 it", path, stat.S_IMODE(mode))
    raw = path.read_bytes().strip()
    try:
        value = bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        value = raw  # not our hex format: an operator's own secret, used as it is
    if len(value) < MIN_SECRET_BYTES:
        # The path only, never the content.
        raise InvalidSpecError(f"{path}: the tenancy secret must hold at least {MIN_SECRET_BYTES} bytes")
    return value


def _create(path: Path) -> None:
    """Writes a temporary file (0600 from the start, fsynced) and links it into place: the secret file
    appears complete or not at all, and when two processes start at once, the first link wins and both
    read the winner's secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(MIN_SECRET_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return  # another process made it first: use theirs
        _fsync_dir(path.parent)
        logger.info("created the tenancy secret %s", path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
