"""The Ray backend's parts that need no cluster: write-if-absent, pins, resource asks, flags, the sweep bar."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from lorabench.cli.main import main
from lorabench.errors import ConfigError
from lorabench.measure.progress import SweepProgress
from lorabench.measure.ray_backend import (
    Pin,
    import_ray,
    load_pins,
    resources_for,
    unsatisfiable,
    write_record_if_absent,
)
from lorabench.measure.record import device_class, write_run_record
from lorabench.measure.sweep import Sweep, load_sweep

MATRIX = """
base: {model: tiny, seq_len: 16, micro_batch: 2}
matrix: {rank: [2, 4], hardware: [{gpu: A5000}, {gpu: H100}]}
options: {dataset: "synthetic:sentiment", examples: 8, max_steps: 2, warmup_steps: 1, trackers: false}
"""


def _sweep(tmp_path: Path, extra: str = "") -> Sweep:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX + extra)
    return load_sweep(matrix, tmp_path / "out")


def test_a_record_is_written_once_and_never_replaced(tmp_path: Path) -> None:
    assert write_record_if_absent(tmp_path, {"status": "ok", "n": 1})
    first = (tmp_path / "result.json").stat()
    assert not write_record_if_absent(tmp_path, {"status": "failed", "n": 2})
    after = (tmp_path / "result.json").stat()
    assert (first.st_ino, first.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert '"n": 1' in (tmp_path / "result.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no temporary left behind


def test_racing_writers_record_exactly_one(tmp_path: Path) -> None:
    won: list[int] = []
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        if write_record_if_absent(tmp_path, {"n": n}):
            won.append(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and f'"n": {won[0]}' in (tmp_path / "result.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_pins_are_read_and_checked(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, "ray:\n  pin: {H100: {accelerator_type: H100, resources: {h100: 1}}}\n")
    assert load_pins(sweep) == {"H100": Pin("H100", {"h100": 1.0})}


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ("ray: [1]", "ray must be a mapping"),
        ("ray: {pins: {}}", "ray: expected a mapping with one key, pin"),
        ("ray: {pin: {A100: {resources: {a100: 1}}}}", "ray.pin.A100: no configuration has hardware.gpu 'A100'"),
        ("ray: {pin: {H100: {}}}", "ray.pin.H100: expected a mapping with accelerator_type"),
        ("ray: {pin: {H100: {accelerator_type: 3}}}", "ray.pin.H100.accelerator_type: expected a non-empty string"),
        ("ray: {pin: {H100: {resources: {h100: -1}}}}", "ray.pin.H100.resources: expected a mapping"),
        ("ray: {pin: {H100: {resources: {h100: true}}}}", "ray.pin.H100.resources: expected a mapping"),
        ("ray: {pin: {H100: {resources: {GPU: 1}}}}", "GPU are set from the spec"),
    ],
)
def test_bad_pins(tmp_path: Path, section: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_pins(_sweep(tmp_path, section + "\n"))
    assert needle in str(info.value)


def test_resource_asks(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    run = sweep.runs[0]
    on_cpu = resources_for(run, cluster_has_gpus=False, pins={})
    assert (on_cpu.num_cpus, on_cpu.num_gpus, on_cpu.packed) == (1.0, 0.0, False)
    pinned = resources_for(run, cluster_has_gpus=True, pins={"A5000": Pin(None, {"a5000": 1.0})})
    assert pinned.demand() == {"CPU": 1.0, "GPU": 1.0, "a5000": 1.0}
    typed = resources_for(run, cluster_has_gpus=True, pins={"A5000": Pin("A10G")})
    assert typed.demand()["accelerator_type:A10G"] == 0.001
    ddp = run.spec.model_copy(
        update={"parallelism": "ddp", "hardware": run.spec.hardware.model_copy(update={"count": 4})}
    )
    multi = resources_for(type(run)(run.run_id, ddp, run.options, 0, ""), cluster_has_gpus=True, pins={})
    assert (multi.num_gpus, multi.num_cpus, multi.packed) == (4.0, 4.0, True)  # one STRICT_PACK bundle


def test_a_demand_no_node_meets_is_found() -> None:
    nodes = [
        {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 2.0}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0, "h100": 1.0}},
    ]
    assert not unsatisfiable({"CPU": 2.0, "GPU": 2.0}, nodes)
    assert unsatisfiable({"CPU": 1.0, "GPU": 4.0}, nodes)  # more GPUs than one node holds
    assert unsatisfiable({"CPU": 1.0, "h100": 1.0}, nodes)  # only a dead node has it


def test_ray_backend_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    base = ["sweep", str(matrix), "--out", str(tmp_path / "o")]
    cases = [
        (["--backend", "spark"], "--backend: expected local or ray"),
        (["--backend", "ray", "--workers", "2"], "--workers: the ray backend schedules runs"),
        (["--address", "ray://h:10001"], "--address: only for --backend ray"),
        (["--backend", "ray", "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray cluster answers there"),
    ]
    for flags, needle in cases:
        assert main([*base, *flags]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not (tmp_path / "o").exists()  # checked before anything is written


def test_missing_ray_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray imports
    with pytest.raises(ConfigError, match=r"Ray is not installed; pip install 'lorabench\[ray\]'"):
        import_ray()


def test_sweep_bar_counts_the_records_in_the_folder(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    runs = sweep.runs
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    with SweepProgress(runs, enabled=True, console=console, poll_s=0.05) as progress:
        # Another sweep on the same folder records every run; this one ran none of them and still reaches 100%.
        for run in runs:
            write_run_record(run.folder, {"status": "ok"})
        progress.nodes({"node-a": 3, "node-b": 1})
    text = screen.getvalue()
    assert f"{len(runs)}/{len(runs)}" in text and "node-a 3 node-b 1" in text
    quiet = io.StringIO()
    with SweepProgress(runs, enabled=False, console=Console(file=quiet, force_terminal=True)) as progress:
        progress.running(["x"])
    assert quiet.getvalue() == ""


def test_device_class_names_the_device_a_record_ran_on() -> None:
    assert device_class({"environment": {"device_names": ["NVIDIA A100-SXM4-80GB"]}}) == "NVIDIA A100-SXM4-80GB"
    assert device_class({"environment": {}, "placement": {"accelerator_type": "A100"}}) == "A100"
    assert device_class({}) == "unknown device"
