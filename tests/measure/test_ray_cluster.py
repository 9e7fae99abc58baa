"""``lorabench sweep --backend ray`` on a real local Ray cluster: a node dies mid-run, every configuration is still
recorded exactly once, on the node it ran on, and a rerun writes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the Ray backend needs ray (pip install 'lorabench[ray]')")

from lorabench.measure.ledger import Ledger
from tests.measure.ray_cluster import LocalCluster, node_processes

# Three tiny runs; the H100 configuration may only run where the custom resource h100 is (the head).
MATRIX = """
base: {model: tiny, seq_len: 16, micro_batch: 2}
matrix: {rank: [2, 4], hardware: [{gpu: A5000}, {gpu: H100}]}
exclude: [{rank: 4, hardware: {gpu: H100}}]
options: {dataset: "synthetic:sentiment", examples: 8, max_steps: 2, warmup_steps: 1, trackers: false}
ray:
  pin: {H100: {resources: {h100: 1}}}
"""


def _stats(out: Path) -> dict[str, tuple[int, int, int]]:
    """run id -> (inode, mtime_ns, size) of every record present."""
    stats = {}
    for path in out.glob("*/result.json"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        stats[path.parent.name] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return stats


def _node_id(group: int) -> str:
    """The Ray node id of the node of process group ``group`` (from its raylet's command line)."""
    for cmdline in node_processes(group).values():
        if "raylet" in cmdline.split()[0]:
            return next(a.split("=", 1)[1] for a in cmdline.split() if a.startswith("--node_id="))
    raise AssertionError(f"no raylet in process group {group}")


def _run_on(group: int) -> tuple[int, str] | None:
    """A run subprocess on the node of process group ``group``: (pid, run id from its launch file)."""
    for pid, cmdline in node_processes(group).items():
        if "lorabench.measure.worker" in cmdline and cmdline.strip().endswith("launch.json"):
            return pid, Path(cmdline.split()[-1]).parent.name
    return None


@pytest.mark.integration
@pytest.mark.slow
def test_a_node_killed_mid_run_loses_nothing_and_records_every_configuration_once(tmp_path: Path) -> None:
    cluster = LocalCluster()
    driver: subprocess.Popen[str] | None = None
    try:
        head_id = _node_id(cluster.start_node(num_cpus=1, resources={"h100": 1}))  # the head
        victim = cluster.start_node(num_cpus=1)
        victim_id = _node_id(victim)
        matrix, out = tmp_path / "matrix.yaml", tmp_path / "sweep"
        matrix.write_text(MATRIX)
        command = [sys.executable, "-m", "lorabench.cli.main", "sweep", str(matrix), "--out", str(out)]
        command += ["--backend", "ray", "--address", cluster.address, "--json"]
        driver = subprocess.Popen(
            command,
            env=cluster.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        seen: dict[str, tuple[int, int, int]] = {}
        killed: tuple[int, str] | None = None
        first_seen = None
        deadline = time.monotonic() + 240
        while driver.poll() is None and time.monotonic() < deadline:
            for run_id, stat in _stats(out).items():
                seen.setdefault(run_id, stat)
            if killed is None:
                running = _run_on(victim)
                first_seen = first_seen or (running and time.monotonic())
                if running is not None and first_seen and time.monotonic() - first_seen > 2:
                    cluster.kill_node(victim)  # mid-run: the run subprocess has started its training job
                    killed = running
                    cluster.start_node(num_cpus=1)  # a replacement, as an autoscaler would bring
            time.sleep(0.2)
        stdout, stderr = driver.communicate(timeout=60)
        assert driver.returncode == 0, stderr[-3000:]
        assert killed is not None, "no run ever started on the node to kill"

        plan = json.loads((out / "sweep-plan.json").read_text())
        planned = {r["run_id"] for r in plan["runs"]}
        assert len(planned) == 3
        records = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/result.json")}
        assert set(records) == planned  # one record per configuration, none lost
        assert {r["status"] for r in records.values()} == {"ok"}
        assert sorted(r["runs"] for r in json.loads(stdout)) == [1, 1, 1]
        assert killed[1] in planned and not Path(f"/proc/{killed[0]}/stat").exists()
        said = " ".join(stderr.split())  # rich wraps lines at 80 columns off a terminal
        assert "ray: 3 record(s) written" in said and "0 result(s) discarded" in said
        nodes = {run_id: r["placement"]["node_id"] for run_id, r in records.items()}
        assert victim_id not in nodes.values()  # the killed run was re-run elsewhere; the dead node recorded nothing
        pinned = [run_id for run_id, r in records.items() if r["spec"]["hardware"]["gpu"] == "H100"]
        assert len(pinned) == 1 and nodes[pinned[0]] == head_id  # only the head has the h100 resource
        assert records[killed[1]]["placement"]["backend"] == "ray"
        with Ledger(out) as ledger:  # one claim each: the killed run was re-run by Ray's retry, not re-claimed
            assert {c.run_id: c.attempts for c in ledger.claims()} == dict.fromkeys(planned, 1)
        assert all(r["placement"]["device_name"] and r["placement"]["hostname"] for r in records.values())
        assert all(r["options"]["out"] == str(out / run_id) for run_id, r in records.items())
        assert all((out / run_id / "adapter" / "adapter_model.safetensors").is_file() for run_id in records)
        for run_id, stat in _stats(out).items():
            assert seen.get(run_id, stat) == stat, f"{run_id}: record rewritten"

        # A pin no node can host fails at once, in one line, before anything is written (not a sweep that waits).
        unplaceable = tmp_path / "unplaceable.yaml"
        unplaceable.write_text(MATRIX.replace("h100: 1", "h200: 1"))
        refused = subprocess.run(
            [*command[:4], str(unplaceable), "--out", str(tmp_path / "never"), *command[7:]],
            env=cluster.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert "needs CPU=1, h200=1 but no node of the Ray cluster has that" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "never").exists()

        before = _stats(out)
        rerun = subprocess.run(command, env=cluster.env(), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        said = " ".join(rerun.stderr.split())
        assert "3 already done, 0 to run" in said and "ray: 0 record(s) written" in said
        assert _stats(out) == before  # nothing rewritten
        assert sorted(r["runs"] for r in json.loads(rerun.stdout)) == [1, 1, 1]
    finally:
        if driver is not None and driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        cluster.stop()
    assert not any(node_processes(group) for group in cluster.groups)
