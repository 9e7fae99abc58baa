"""Sweeps: a matrix of specs, each run measured in its own subprocess, resumable.

A matrix file::

    base: {model: tiny, seq_len: 128}            # RunSpec fields shared by every run
    matrix: {method: [lora, qlora], rank: [4, 8], bits: [16, 4]}
    options: {dataset: "synthetic:sentiment", max_steps: 20}   # RunOptions for every run (no `out`)
    exclude: [{method: lora, bits: 4}]          # optional

expands to the cartesian product. Combinations that break a rule spanning several fields (qlora at 16
bits) are skipped and listed; a value that is invalid on its own is an error. Every run has a stable id
(hash of spec + options + repeat) and a folder under the sweep's output; a run is done when its
``result.json`` exists (records are written atomically, so a half-written one never does). A rerun
skips done runs and redoes interrupted ones, so each configuration ends with exactly one record.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lorabench.errors import ConfigError
from lorabench.measure.options import RunOptions
from lorabench.measure.record import RECORD_NAME, read_run_record, write_run_record
from lorabench.records import write_json_atomic
from lorabench.spec import RunSpec, parse_spec

__all__ = ["PlannedRun", "Sweep", "load_sweep", "run_sweep", "summarise"]


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its spec, options (with its own output folder) and identity."""

    run_id: str
    spec: RunSpec
    options: RunOptions
    repeat: int
    config_id: str

    @property
    def folder(self) -> Path:
        """Where the run's record and adapter go."""
        return self.options.out

    def done(self) -> bool:
        """True when a complete record exists (whatever its status)."""
        return (self.folder / RECORD_NAME).is_file()


@dataclass(frozen=True)
class Sweep:
    """An expanded matrix."""

    runs: tuple[PlannedRun, ...]
    skipped: tuple[str, ...]
    out: Path


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def _read_matrix(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read sweep matrix ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}: malformed YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with base, matrix, options")
    unknown = set(data) - {"base", "matrix", "options", "exclude"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))} (allowed: base, matrix, options, exclude)"
        )
    for key in ("base", "matrix", "options"):
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"{path}: {key} must be a mapping")
    for axis, values in (data.get("matrix") or {}).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: matrix.{axis} must be a non-empty list")
    if not isinstance(data.get("exclude", []), list):
        raise ConfigError(f"{path}: exclude must be a list of mappings")
    return data


def load_sweep(path: Path, out: Path, repeats: int = 1) -> Sweep:
    """Expand a matrix file into planned runs under ``out``.

    Raises:
        ConfigError: Unreadable or invalid matrix, an invalid value, or nothing left to run.
    """
    if repeats < 1:
        raise ConfigError(f"--repeats: must be >= 1 (got {repeats})")
    data = _read_matrix(path)
    base = dict(data.get("base") or {})
    matrix: dict[str, list[Any]] = dict(data.get("matrix") or {})
    excludes = [e for e in data.get("exclude") or [] if isinstance(e, dict)]
    option_values = dict(data.get("options") or {})
    if "out" in option_values:
        raise ConfigError(f"{path}: options.out is set per run by the sweep; remove it")
    axes = list(matrix)
    runs: list[PlannedRun] = []
    skipped: list[str] = []
    for combo in itertools.product(*(matrix[a] for a in axes)) if axes else [()]:
        values = dict(zip(axes, combo, strict=True))
        if any(all(values.get(k) == v for k, v in ex.items()) for ex in excludes):
            continue
        raw = {**base, **values}
        label = ", ".join(f"{k}={v}" for k, v in values.items()) or "base"
        try:
            spec = parse_spec(raw, f"{path} [{label}]")
        except ConfigError as exc:
            if "qlora means" in str(exc) or "parallelism: 'single'" in str(exc):
                skipped.append(f"{label}: {str(exc).split(': ', 2)[-1]}")
                continue
            raise
        config_id = _digest({"spec": spec.model_dump(mode="json"), "options": option_values})
        for repeat in range(repeats):
            run_id = f"{spec.label()}-b{spec.micro_batch}-{config_id}-rep{repeat}"
            try:
                options = RunOptions.model_validate(
                    {**option_values, "out": out / run_id, "seed": option_values.get("seed", 0) + repeat}
                )
            except ValidationError as exc:
                problems = "; ".join(f"options.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ConfigError(f"{path}: {problems}") from None
            runs.append(PlannedRun(run_id, spec, options, repeat, config_id))
    if not runs:
        raise ConfigError(f"{path}: the matrix expands to no runnable configuration")
    return Sweep(tuple(runs), tuple(skipped), out)


def _worker_command(run: PlannedRun, launch: Path) -> list[str]:
    nproc = run.spec.hardware.count if run.spec.parallelism != "single" else 1
    if nproc > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "lorabench.measure.worker",
            str(launch),
        ]
    return [sys.executable, "-m", "lorabench.measure.worker", str(launch)]


def execute(run: PlannedRun, timeout_s: float | None = None) -> dict[str, Any]:
    """Run one planned run in its own subprocess and return its record.

    A worker that dies without writing a record (killed, segfault, timeout) gets a ``failed`` record
    saying how it ended, so the sweep goes on and the configuration is not retried forever.
    """
    from lorabench.measure.worker import write_launch_file

    launch = run.folder / "launch.json"
    write_launch_file(launch, run.spec.model_dump(mode="json"), run.options.model_dump(mode="json"))
    try:
        proc = subprocess.run(
            _worker_command(run, launch), capture_output=True, text=True, timeout=timeout_s, check=False
        )
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        code, err = None, f"timed out after {timeout_s} s; {stderr}"
    if run.done():
        return read_run_record(run.folder)
    if code == 2:
        lines = [ln for ln in (err or "").splitlines() if ln.startswith("lorabench: error:")]
        message = lines[-1].removeprefix("lorabench: error: ") if lines else (err or "").strip()[-500:]
        raise ConfigError(f"{run.run_id}: {message}")
    how = (
        "timed out"
        if code is None
        else f"killed by signal {signal.Signals(-code).name}"
        if code < 0
        else f"exit {code}"
    )
    tail = " | ".join((err or "").strip().splitlines()[-3:])[-1000:]
    hint = " (SIGKILL: possibly the out-of-memory killer)" if code == -9 else ""
    record = {
        "status": "failed",
        "message": f"worker {how}{hint} without writing a record: {tail}",
        "spec": run.spec.model_dump(mode="json"),
        "options": run.options.model_dump(mode="json"),
        "metrics": {},
    }
    write_run_record(run.folder, record)
    return read_run_record(run.folder)


def run_sweep(
    sweep: Sweep,
    on_start: Callable[[PlannedRun], None] | None = None,
    on_done: Callable[[PlannedRun, dict[str, Any] | None], None] | None = None,
    timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    """Run every planned run that has no record yet; return every run's record (done before or now).

    Args:
        sweep: The expanded matrix.
        on_start: Called before each run starts (progress display).
        on_done: Called after each run (its record), or for a run skipped because it was done (None).
        timeout_s: Per-run time limit.
    """
    write_json_atomic(
        sweep.out / "sweep-plan.json",
        {
            "runs": [{"run_id": r.run_id, "config_id": r.config_id, "repeat": r.repeat} for r in sweep.runs],
            "skipped": list(sweep.skipped),
        },
    )
    records = []
    for run in sweep.runs:
        if run.done():
            if on_done is not None:
                on_done(run, None)
            records.append(read_run_record(run.folder))
            continue
        if on_start is not None:
            on_start(run)
        record = execute(run, timeout_s)
        if on_done is not None:
            on_done(run, record)
        records.append(record)
    return records


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return mean, std


def summarise(sweep: Sweep, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: status counts and mean / sample std of the key figures over repeats."""
    by_config: dict[str, list[tuple[PlannedRun, dict[str, Any]]]] = {}
    for run, record in zip(sweep.runs, records, strict=True):
        by_config.setdefault(run.config_id, []).append((run, record))
    rows = []
    for config_id, items in by_config.items():
        spec = items[0][0].spec
        ok = [r for _, r in items if r.get("status") == "ok"]
        row: dict[str, Any] = {
            "config_id": config_id,
            "label": f"{spec.label()}-b{spec.micro_batch}",
            "spec": spec.model_dump(mode="json"),
            "runs": len(items),
            "statuses": sorted({str(r.get("status")) for _, r in items}),
            "messages": [r.get("message") for _, r in items if r.get("status") != "ok"],
        }
        for name in ("wall_time_s", "tokens_per_s_nonpad", "tokens_per_s_padded", "peak_allocated_bytes"):
            values = [float(r["metrics"][name]) for r in ok if r.get("metrics", {}).get(name) is not None]
            row[f"{name}_mean"], row[f"{name}_std"] = _mean_std(values)
        rows.append(row)
    return rows


def iter_pending(sweep: Sweep) -> Iterator[PlannedRun]:
    """Runs that have no record yet."""
    return (r for r in sweep.runs if not r.done())
