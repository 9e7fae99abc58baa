"""A real local Ray cluster for tests: a head and more node processes on loopback, CPU-only, in a temp dir.

Each ``ray start`` runs in its own session, so a node's processes are its process group plus their descendants
(Ray workers make their own groups, and the run subprocesses are theirs). :meth:`LocalCluster.kill_node` SIGKILLs
all of them, the way a machine dies; :meth:`LocalCluster.stop` ends every process the cluster started, by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, command line) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), cmdline)
    return table


def node_processes(group: int) -> dict[int, str]:
    """The processes of the node whose ``ray start`` led process group ``group``: the group and descendants."""
    table = _table()
    found = {pid for pid, (_, pgid, _) in table.items() if pgid == group}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, _) in table.items() if ppid in found and pid not in found}
        found |= more
        grew = bool(more)
    return {pid: table[pid][2] for pid in found}


@dataclass
class LocalCluster:
    """Nodes started with ``ray start``; ``root`` holds Ray's temp dir and the nodes' TMPDIR."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lbray", dir="/tmp")))
    port: int = field(default_factory=_free_port)
    groups: list[int] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        (self.root / "tmp").mkdir(exist_ok=True)
        return {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "TMPDIR": str(self.root / "tmp"),  # the runs' scratch folders
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def start_node(self, num_cpus: int = 1, resources: dict[str, float] | None = None) -> int:
        """Start the head (first call) or one more node; returns its process group."""
        common = ["--num-cpus", str(num_cpus), "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        common += ["--resources", json.dumps(resources or {})]
        if not self.groups:
            command = [RAY, "start", "--head", "--port", str(self.port), "--temp-dir", str(self.root / "ray")]
            command += ["--include-dashboard=false"]
        else:
            command = [RAY, "start", "--address", self.address]
        proc = subprocess.Popen(
            [*command, *common],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.groups.append(proc.pid)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise RuntimeError(f"ray start timed out: {out[-2000:]}") from None
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed ({proc.returncode}): {out[-2000:]}")
        return proc.pid

    def kill_node(self, group: int) -> list[int]:
        """SIGKILL every process of one node (raylet, agents, Ray workers, their run subprocesses)."""
        victims = node_processes(group)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return sorted(victims)

    def stop(self) -> None:
        """End every process of every node (SIGTERM, then SIGKILL), then remove the temp dir."""
        pids: set[int] = set()
        for group in self.groups:
            pids |= set(node_processes(group))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and _alive(p) for p in pids):
                time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
