"""LiteLLM's own virtual environment, ``.venv-litellm`` (gitignored), made on first use with uv.

LiteLLM pins its own fastapi, pydantic, openai and uvicorn, which aihub's lock cannot share. The set is
``bench/litellm-requirements.txt``: pinned, hashed, resolved for Python 3.11 to 3.13 (regenerate it
with the command at its top).

The interpreter is a Python 3.12 or 3.13 where one is found. Under CPython 3.11.7 the proxy (1.108.7,
with the OpenTelemetry SDK it imports on every request) died three times out of three within 100 to
210 s of load here: a segfault inside libpython, or a ``MemoryError`` from ``ContextVar.set``. Under
3.12.1 the same load ran 240 s without a fault, and so did 3.11 without the SDK (but that one pays a
failed import on every request).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = Path(__file__).with_name("litellm-requirements.txt")
DEFAULT_VENV = REPO / ".venv-litellm"
_STAMP = ".requirements-sha256"  # what the environment was made from: requirements and interpreter
_WANTED = ">=3.12,<3.14"


def _uv() -> list[str]:
    # uv is in aihub's lock, so it sits beside this interpreter; `python -m uv` finds its binary.
    return [sys.executable, "-m", "uv"]


def find_python() -> tuple[str, bool]:
    """An interpreter for LiteLLM, and whether it is one of the wanted versions.

    uv looks on PATH; pyenv's interpreters are not there unless selected, so its versions folder is
    looked at too. Failing both, this interpreter (3.11), which works but may crash under long load.
    """
    found = subprocess.run(
        [*_uv(), "python", "find", "--quiet", _WANTED], capture_output=True, text=True, check=False
    )
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip(), True
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    for minor in ("3.12", "3.13"):  # 3.12 first: the one tried under load here
        candidates = sorted(glob.glob(f"{root}/versions/{minor}.*/bin/python{minor}"), reverse=True)
        if candidates:
            return candidates[0], True
    return sys.executable, False


def _interpreter_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def ensure_venv(
    venv: Path = DEFAULT_VENV, python: str | None = None, requirements: Path = REQUIREMENTS
) -> Path:
    """The environment, made again when the requirements or the interpreter changed; its ``litellm``.

    ``python``: the interpreter to make it with (default: ``find_python``).
    """
    venv = venv.absolute()  # the proxy runs in its work folder: a relative script path would not resolve
    python = python or find_python()[0]
    stamp_text = f"{hashlib.sha256(requirements.read_bytes()).hexdigest()} {_interpreter_version(python)}"
    stamp = venv / _STAMP
    script = venv / "bin" / "litellm"
    if script.exists() and stamp.exists() and stamp.read_text().strip() == stamp_text:
        return script
    if stamp.exists():
        shutil.rmtree(venv)  # made here from another interpreter or set: start clean (uv caches wheels)
    elif venv.exists():
        raise RuntimeError(f"{venv} exists but was not made by this benchmark: remove it or pick another")
    subprocess.run([*_uv(), "venv", "--quiet", "--python", python, str(venv)], check=True)
    # `sync` installs exactly the locked set, hash-checked.
    sync = [*_uv(), "pip", "sync", "--quiet", "--require-hashes", "--python", str(venv / "bin" / "python")]
    subprocess.run([*sync, str(requirements)], check=True)
    stamp.write_text(stamp_text + "\n")
    return script


def venv_python_version(venv: Path = DEFAULT_VENV) -> str:
    return _interpreter_version(str(venv.absolute() / "bin" / "python"))


def litellm_version() -> str:
    """The version the requirements pin (the one the environment is synced to)."""
    for line in REQUIREMENTS.read_text().splitlines():
        if line.startswith("litellm=="):
            return line.split("==", 1)[1].split()[0]
    return "unknown"
