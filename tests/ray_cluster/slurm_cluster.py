"""A one-node Slurm cluster on 127.0.0.1 (Debian's slurm-wlm + munge), in a temporary folder.

The recipe of /work/shared/INFRA-NOTES.md: a munge key and socket of our own, a slurm.conf whose node is
this host at 127.0.0.1, and munged, slurmctld and slurmd as child processes stopped by PID. Ports are
picked free so that two clusters (two sessions, CI) never meet.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")

SLURM_CONF = """\
ClusterName=aihubtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge}/munge.socket
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation={dir}/ctld
SlurmdSpoolDir={dir}/d
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
KillWait=10
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=20000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def missing_binaries() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalSlurmCluster:
    """``with LocalSlurmCluster(dir) as cluster:`` runs the daemons; ``cluster.env`` is for client commands."""

    def __init__(self, root: Path, *, cpus: int = 2) -> None:
        self.root = root
        self.cpus = cpus
        self.node = socket.gethostname()
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # munged wants every folder above its socket open to all (x): pytest's tmp folders are 0700.
        self.munge = Path(tempfile.mkdtemp(prefix="aihub-munge-", dir="/tmp"))

    def __enter__(self) -> LocalSlurmCluster:
        munge = self.munge
        for sub in (self.root / "ctld", self.root / "d"):
            sub.mkdir(parents=True, exist_ok=True)
        munge.chmod(0o711)  # munged refuses a socket folder others may write to
        key = munge / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o600)
        self.conf.write_text(
            SLURM_CONF.format(
                node=self.node,
                dir=self.root,
                munge=munge,
                cpus=self.cpus,
                ctld_port=_free_port(),
                d_port=_free_port(),
            )
        )
        try:
            self._start(
                "munged",
                [
                    "munged",
                    "-F",
                    f"--socket={munge / 'munge.socket'}",
                    f"--key-file={key}",
                    f"--log-file={munge / 'munged.log'}",
                    f"--pid-file={munge / 'munged.pid'}",
                    f"--seed-file={munge / 'munged.seed'}",
                ],
            )
            self._wait_for(lambda: (munge / "munge.socket").exists(), 10, "munged socket")
            self._start("slurmctld", ["slurmctld", "-D"])
            self._start("slurmd", ["slurmd", "-D"])
            self._wait_for(self._node_idle, 60, "node idle in sinfo")
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, name: str, command: list[str]) -> None:
        log = (self.root / f"{name}.stdout").open("wb")
        self.processes[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root
        )
        log.close()

    def _wait_for(self, check: object, timeout_s: float, what: str) -> None:
        assert callable(check)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs()}")
            if check():
                return
            time.sleep(0.2)
        raise TimeoutError(f"no {what} after {timeout_s} s:\n{self.logs()}")

    def _node_idle(self) -> bool:
        done = self.run(["sinfo", "-h", "-o", "%T"], check=False)
        return done.returncode == 0 and done.stdout.strip() == "idle"

    def run(
        self, command: list[str], *, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=check, timeout=timeout
        )

    def job_state(self, job_id: str) -> str:
        """The job's state in squeue, or "" once it has left the queue."""
        done = self.run(["squeue", "-h", "-j", job_id, "-o", "%T"], check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    def cancel_all(self, timeout_s: float = 60) -> None:
        self.run(["scancel", "--full", "-u", "root"], check=False)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.run(["squeue", "-h"], check=False).stdout.strip():
                return
            time.sleep(0.5)
        raise TimeoutError(f"jobs still queued after scancel:\n{self.run(['squeue'], check=False).stdout}")

    def logs(self) -> str:
        parts = []
        for path in (
            sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.stdout")) + [self.munge / "munged.log"]
        ):
            if not path.exists():
                continue
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        # Reverse order: slurmd, slurmctld, then munged, which both still talk to while stopping.
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        shutil.rmtree(self.munge, ignore_errors=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.processes:
                self.cancel_all()
        finally:
            self.stop()


def processes_mentioning(marker: str) -> list[str]:
    """Command lines of live processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found
