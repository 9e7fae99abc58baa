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

Runs are claimed through the sweep's :class:`~lorabench.measure.ledger.Ledger` (SQLite, beside the results), so
several workers (``lorabench sweep --workers N``, or the same command started twice) share one sweep without
running any configuration twice, and the claim of a worker that was killed is taken over once it is gone.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lorabench.errors import (
    EXIT_ENVIRONMENT,
    ConfigError,
    EnvironmentFailure,
    Interrupted,
    MeasurementError,
)
from lorabench.interrupts import STOP_GRACE_S, stop_child
from lorabench.measure.ledger import Ledger
from lorabench.measure.options import RunOptions
from lorabench.measure.record import RECORD_NAME, read_run_record, write_run_record
from lorabench.measure.worker import worker_command
from lorabench.records import write_json_atomic
from lorabench.spec import RunSpec, parse_spec

__all__ = [
    "MAX_UNCONFIRMED_RUNS",
    "PlannedRun",
    "Sweep",
    "check_datasets",
    "check_models",
    "check_out",
    "check_records",
    "gpu_slots",
    "load_sweep",
    "prepare",
    "record_state",
    "remove_stale_temporaries",
    "run_sweep",
    "run_sweep_workers",
    "summarise",
    "work",
]


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
        """True when a complete record exists (whatever its status, except ``interrupted``: that run is redone).

        A corrupt record counts as done here; :func:`check_records` reports it before a sweep starts.
        """
        return record_state(self.folder) in ("done", "corrupt")


@dataclass(frozen=True)
class Sweep:
    """An expanded matrix."""

    runs: tuple[PlannedRun, ...]
    skipped: tuple[str, ...]
    out: Path
    matrix: Path | None = None
    repeats: int = 1


_MAX_COMBINATIONS = 100_000
MAX_UNCONFIRMED_RUNS = 1_000  # more runs to run than this need --yes (or a yes at the terminal)


def record_state(folder: Path) -> str:
    """``missing``, ``done``, ``interrupted`` (a signal stopped it: redo it) or ``corrupt`` (unreadable)."""
    path = folder / RECORD_NAME
    try:
        if not path.is_file():
            return "missing"
    except OSError:
        return "missing"
    try:
        record = read_run_record(path)
    except MeasurementError:
        return "corrupt"
    return "interrupted" if record.get("status") == "interrupted" else "done"


def check_models(sweep: Sweep) -> None:
    """Resolve every model of the sweep once (a local ``config.json`` has its sizes checked) before any run starts.

    Raises:
        ModelError: An unknown model, or a config whose sizes are invalid (file and field named).
    """
    from lorabench.models import resolve_model

    for model in sorted({r.spec.model for r in sweep.runs}):
        resolve_model(model)


def check_records(sweep: Sweep) -> None:
    """Read every existing run record of the sweep before any run starts (a resume trusts them).

    Raises:
        MeasurementError: A record cannot be read or is not a run record (its path, and what to do).
    """
    corrupt = []
    for run in sweep.runs:
        if record_state(run.folder) == "corrupt":
            corrupt.append(run.folder / RECORD_NAME)
    if corrupt:
        try:
            read_run_record(corrupt[0])
            reason = "unreadable"
        except MeasurementError as exc:
            reason = str(exc).split(": ", 1)[-1]
        more = f" ({len(corrupt) - 1} more corrupt record(s) in {sweep.out})" if len(corrupt) > 1 else ""
        raise MeasurementError(
            f"{corrupt[0]}: corrupt run record ({reason}); delete it (or move it away) to redo that run, then rerun "
            f"the same command{more}"
        )


def check_out(out: Path) -> None:
    """Check that the sweep folder's path (and its run folders) can exist on this filesystem.

    Raises:
        ConfigError: A component of ``out`` is longer than the filesystem allows, or the path is too long.
    """
    probe = out
    while probe != probe.parent:
        try:
            if probe.exists():
                break
        except OSError:  # too long to even look up
            pass
        probe = probe.parent
    try:
        name_max = os.pathconf(probe, "PC_NAME_MAX")
        path_max = os.pathconf(probe, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in out.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise ConfigError(
                f"--out: the name {part[:40]}... is {size} bytes, longer than this filesystem allows ({name_max}); "
                "choose a shorter folder name"
            )
    # A run folder adds its id (model label, hash and repeat: up to ~200 bytes) and file names below it.
    if len(os.fsencode(str(out.absolute()))) + 256 > path_max:
        raise ConfigError(
            f"--out: the path is too long for this filesystem ({path_max} bytes at most, with run folders)"
        )


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _run_folder_name(label: str) -> str:
    # Model names come from files: keep a run's folder one plain name inside the sweep folder, whatever they hold.
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", label).lstrip(".")
    return name or "run"


def _read_matrix(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read sweep matrix ({exc})") from None
    except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: nesting too deep
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}: malformed YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with base, matrix, options")
    unknown = set(data) - {"base", "matrix", "options", "exclude", "ray"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            "(allowed: base, matrix, options, exclude, ray)"
        )
    for key in ("base", "matrix", "options", "ray"):  # ray: read by lorabench.measure.ray_backend
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"{path}: {key} must be a mapping")
    for axis, values in (data.get("matrix") or {}).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: matrix.{axis} must be a non-empty list")
    excludes = data.get("exclude") or []
    if not isinstance(excludes, list) or not all(isinstance(e, dict) for e in excludes):
        raise ConfigError(f"{path}: exclude must be a list of mappings")
    axes = set(data.get("matrix") or {})
    for index, rule in enumerate(excludes):
        stray = sorted(map(str, set(rule) - axes))
        if stray:  # such a rule could never match: say so instead of running what the user meant to exclude
            raise ConfigError(
                f"{path}: exclude[{index}] names {', '.join(stray)}, not a matrix axis "
                f"(axes: {', '.join(sorted(map(str, axes))) or 'none'})"
            )
    size = math.prod(len(v) for v in (data.get("matrix") or {}).values())
    if size > _MAX_COMBINATIONS:
        raise ConfigError(f"{path}: the matrix has {size:,} combinations; at most {_MAX_COMBINATIONS:,} are accepted")
    return data


def _options_problems(path: Path, exc: ValidationError) -> ConfigError:
    problems = "; ".join(
        f"options.{'.'.join(map(str, e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()
    )
    return ConfigError(f"{path}: {problems}")


def load_sweep(path: Path, out: Path, repeats: int = 1) -> Sweep:
    """Expand a matrix file into planned runs under ``out``.

    Raises:
        ConfigError: Unreadable or invalid matrix, an invalid value, or nothing left to run.
    """
    if repeats < 1:
        raise ConfigError(f"--repeats: must be >= 1 (got {repeats})")
    check_out(out)
    data = _read_matrix(path)
    base = dict(data.get("base") or {})
    matrix: dict[str, list[Any]] = dict(data.get("matrix") or {})
    excludes: list[dict[str, Any]] = list(data.get("exclude") or [])
    option_values = dict(data.get("options") or {})
    if "out" in option_values:
        raise ConfigError(f"{path}: options.out is set per run by the sweep; remove it")
    try:  # every run shares these: check them once, before anything is expanded
        seed = RunOptions.model_validate({**option_values, "out": out}).seed
    except ValidationError as exc:
        raise _options_problems(path, exc) from None
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
            run_id = _run_folder_name(f"{spec.label()}-b{spec.micro_batch}-{config_id}-rep{repeat}")
            try:
                options = RunOptions.model_validate({**option_values, "out": out / run_id, "seed": seed + repeat})
            except ValidationError as exc:
                raise _options_problems(path, exc) from None
            runs.append(PlannedRun(run_id, spec, options, repeat, config_id))
    if not runs:
        raise ConfigError(f"{path}: the matrix expands to no runnable configuration")
    return Sweep(tuple(runs), tuple(skipped), out, path, repeats)


def check_datasets(sweep: Sweep) -> None:
    """Read every dataset file of the sweep once (and check synthetic task names) before any run starts.

    Raises:
        DataError: A missing, empty or malformed dataset (file and line named), or an unknown synthetic task.
    """
    from lorabench.data.synthetic import SYNTHETIC_TASKS
    from lorabench.errors import DataError
    from lorabench.measure.runner import load_records

    checked = {(r.options.dataset, r.options.format, str(r.options.fields)): r.options for r in sweep.runs}
    for key in sorted(checked):
        dataset = key[0]
        task = RunOptions(dataset=dataset, out=sweep.out).synthetic_task
        if task is None:
            load_records(checked[key])
        elif task not in SYNTHETIC_TASKS:
            raise DataError(
                f"options.dataset: unknown synthetic task {task!r} (choose one of: {', '.join(SYNTHETIC_TASKS)})"
            )


def _worker_command(run: PlannedRun, launch: Path) -> list[str]:
    return worker_command(launch, run.spec.hardware.count if run.spec.parallelism != "single" else 1)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed atomic write left in a run folder; returns what was removed.

    Only called for a run this process has claimed (nobody else writes into its folder), before the run starts.
    Such files are never read as records; removing them keeps a resumed sweep's folders clean.
    """
    removed = []
    for leftover in sorted(folder.glob(".*.tmp")):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def execute(
    run: PlannedRun, timeout_s: float | None = None, on_spawn: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run one planned run in its own subprocess and return its record.

    A worker that dies without writing a record (killed, segfault, timeout) gets a ``failed`` record
    saying how it ended, so the sweep goes on and the configuration is not retried forever.

    Args:
        run: The run.
        timeout_s: Time limit; the subprocess is killed past it.
        on_spawn: Called with the subprocess's pid once it runs (the ledger notes it in the claim).

    Raises:
        ConfigError: The run subprocess rejected its input (exit status 2).
    """
    from lorabench.measure.worker import write_launch_file

    remove_stale_temporaries(run.folder)
    launch = run.folder / "launch.json"
    write_launch_file(launch, run.spec.model_dump(mode="json"), run.options.model_dump(mode="json"))
    proc = subprocess.Popen(
        _worker_command(run, launch), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    code: int | None
    try:
        if on_spawn is not None:
            on_spawn(proc.pid)
        _, err = proc.communicate(timeout=timeout_s)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        code, err = None, f"timed out after {timeout_s} s; {stderr or ''}"
    except BaseException as exc:  # stopped by a signal: forward it and wait, so no run is left holding a GPU
        stop_child(proc, exc.signum if isinstance(exc, Interrupted) else None)
        raise
    if record_state(run.folder) in ("done", "interrupted"):
        return read_run_record(run.folder)
    if code in (2, EXIT_ENVIRONMENT):
        lines = [ln for ln in (err or "").splitlines() if ln.startswith("lorabench: error:")]
        message = lines[-1].removeprefix("lorabench: error: ") if lines else (err or "").strip()[-500:]
        if code == EXIT_ENVIRONMENT:
            raise EnvironmentFailure(f"{run.run_id}: {message}")
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
    try:
        write_run_record(run.folder, record)
    except EnvironmentFailure as exc:  # keep the run's own words: they say why it died
        raise EnvironmentFailure(f"{run.run_id}: {record['message']}; and its record: {exc}") from None
    return read_run_record(run.folder)


def _prepare(sweep: Sweep) -> None:
    check_records(sweep)
    write_json_atomic(
        sweep.out / "sweep-plan.json",
        {
            "runs": [{"run_id": r.run_id, "config_id": r.config_id, "repeat": r.repeat} for r in sweep.runs],
            "skipped": list(sweep.skipped),
        },
    )
    by_id = {r.run_id: r for r in sweep.runs}
    with Ledger(sweep.out) as ledger:
        ledger.sync(list(by_id), lambda run_id: by_id[run_id].done())


def prepare(sweep: Sweep) -> None:
    """Write the sweep's plan and reconcile its ledger with the records on disk (what every backend does first)."""
    _prepare(sweep)


def work(
    sweep: Sweep,
    on_start: Callable[[PlannedRun], None] | None = None,
    on_done: Callable[[PlannedRun, dict[str, Any] | None], None] | None = None,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
) -> int:
    """Claim runs of ``sweep`` through its ledger and run them, until every run is done; one worker's loop.

    When nothing is left to claim but other live workers still hold runs, it waits: their claims are taken
    over if those workers die.

    Args:
        sweep: The expanded matrix.
        on_start: Called before a claimed run starts.
        on_done: Called after a run (its record), or with None for a claimed run found already recorded.
        timeout_s: Per-run time limit.
        poll_s: Wait between claim attempts while other workers hold the last runs.

    Returns:
        How many runs this worker ran.

    Raises:
        ConfigError: A run rejected its input (the claim is given back first).
    """
    by_id = {r.run_id: r for r in sweep.runs}
    ran = 0
    with Ledger(sweep.out) as ledger:
        ledger.sync(list(by_id), lambda run_id: by_id[run_id].done())
        while True:
            run_id = ledger.claim(by_id)
            if run_id is None:
                if ledger.unfinished(by_id) == 0:
                    return ran
                time.sleep(poll_s)
                continue
            run = by_id[run_id]
            if run.done():  # its worker wrote the record, then died before saying so
                ledger.finish(run_id, str(read_run_record(run.folder).get("status")))
                if on_done is not None:
                    on_done(run, None)
                continue
            if on_start is not None:
                on_start(run)
            try:
                record = execute(run, timeout_s, on_spawn=functools.partial(ledger.set_child, run_id))
            except BaseException:  # bad input, a full disk, a signal: the claim goes back (when the disk lets it)
                ledger.release_quietly(run_id)
                raise
            ledger.finish(run_id, str(record.get("status")))
            ran += 1
            if on_done is not None:
                on_done(run, record)


def run_sweep(
    sweep: Sweep,
    on_start: Callable[[PlannedRun], None] | None = None,
    on_done: Callable[[PlannedRun, dict[str, Any] | None], None] | None = None,
    timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    """Run every planned run that has no record yet in this process; return every run's record.

    Args:
        sweep: The expanded matrix.
        on_start: Called before each run starts (progress display).
        on_done: Called after each run (its record), or for a run skipped because it was done (None).
        timeout_s: Per-run time limit.
    """
    _prepare(sweep)
    if on_done is not None:
        for run in sweep.runs:
            if run.done():
                on_done(run, None)
    work(sweep, on_start, on_done, timeout_s)
    return [read_run_record(r.folder) for r in sweep.runs]


def gpu_slots(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs workers can be pinned to: ``CUDA_VISIBLE_DEVICES`` entries, else NVML's devices; [] without GPUs."""
    from lorabench.measure.trackers.nvml import load_nvml, visible_devices

    visible = visible_devices(os.environ if environ is None else environ)
    if visible is not None:
        return visible
    nvml, _ = load_nvml()
    if nvml is None:
        return []
    try:
        return [str(i) for i in range(int(nvml.nvmlDeviceGetCount()))]
    except Exception:  # a driver error means no usable GPU, not a failed sweep
        return []


def _worker_process_command(sweep: Sweep, timeout_s: float | None) -> list[str]:
    if sweep.matrix is None:
        raise ConfigError("a sweep run by several workers needs its matrix file")
    command = [
        sys.executable,
        "-m",
        "lorabench.measure.sweep_worker",
        str(sweep.matrix),
        "--out",
        str(sweep.out),
        "--repeats",
        str(sweep.repeats),
    ]
    return command + (["--timeout-s", repr(float(timeout_s))] if timeout_s is not None else [])


def run_sweep_workers(
    sweep: Sweep,
    workers: int,
    timeout_s: float | None = None,
    on_progress: Callable[[int, Sequence[str]], None] | None = None,
    poll_s: float = 0.5,
) -> list[dict[str, Any]]:
    """Run the sweep with ``workers`` worker processes claiming runs through the ledger; return every record.

    With GPUs, worker ``i`` sees only GPU ``i`` (``CUDA_VISIBLE_DEVICES``), so ``workers`` may not exceed the
    GPUs; without, the workers are CPU processes. Each worker process is ``python -m lorabench.measure.sweep_worker``.

    Args:
        sweep: The expanded matrix (loaded from a file: the workers expand it again).
        workers: Worker processes (>= 1).
        timeout_s: Per-run time limit.
        on_progress: Called every ``poll_s`` with the number of done runs and the runs being run.
        poll_s: Progress interval.

    Raises:
        ConfigError: Bad ``workers`` for this machine or sweep, or a run rejected its input.
        MeasurementError: Workers died leaving runs unfinished (rerun the same command to resume).
    """
    if workers < 1:
        raise ConfigError(f"--workers: must be >= 1 (got {workers})")
    multi = [r.run_id for r in sweep.runs if r.spec.parallelism != "single" and r.spec.hardware.count > 1]
    if multi and workers > 1:
        raise ConfigError(f"--workers: {multi[0]} needs several GPUs itself; run such sweeps with --workers 1")
    gpus = gpu_slots()
    if gpus and workers > len(gpus):
        raise ConfigError(f"--workers: {workers} workers but {len(gpus)} GPU(s) visible; one worker per GPU")
    command = _worker_process_command(sweep, timeout_s)
    _prepare(sweep)
    run_ids = [r.run_id for r in sweep.runs]
    procs: list[tuple[subprocess.Popen[bytes], Any]] = []
    try:
        for index in range(workers):
            env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": gpus[index]} if gpus else {})}
            err = tempfile.TemporaryFile()  # noqa: SIM115 - closed after the worker ends, below
            procs.append((subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err), err))
        with Ledger(sweep.out) as ledger:
            while any(p.poll() is None for p, _ in procs):
                if on_progress is not None:
                    claims = ledger.claims(run_ids)
                    on_progress(
                        sum(c.state == "done" for c in claims), [c.run_id for c in claims if c.state == "claimed"]
                    )
                time.sleep(poll_s)
            claims = ledger.claims(run_ids)
            if on_progress is not None:
                on_progress(sum(c.state == "done" for c in claims), [])
    except BaseException as exc:
        _stop_workers([p for p, _ in procs], exc.signum if isinstance(exc, Interrupted) else None)
        raise
    errors = []
    for proc, err in procs:
        err.seek(0)
        text = err.read().decode("utf-8", errors="replace")
        err.close()
        if proc.returncode in (2, EXIT_ENVIRONMENT):
            lines = [ln for ln in text.splitlines() if ln.startswith("lorabench: error:")]
            message = lines[-1].removeprefix("lorabench: error: ") if lines else text.strip()[-500:]
            raise (EnvironmentFailure if proc.returncode == EXIT_ENVIRONMENT else ConfigError)(message)
        if proc.returncode != 0:
            tail = " | ".join(text.strip().splitlines()[-2:])[-300:]
            errors.append(f"exit {proc.returncode}" + (f" ({tail})" if tail else ""))
    missing = [r.run_id for r in sweep.runs if not r.done()]
    if missing:
        raise MeasurementError(
            f"{len(missing)} run(s) unfinished, workers ended with {'; '.join(errors) or 'exit 0'}: "
            "rerun the same command to resume"
        )
    return [read_run_record(r.folder) for r in sweep.runs]


def _stop_workers(procs: Sequence[subprocess.Popen[bytes]], signum: int | None) -> None:
    """Forward ``signum`` to every worker (each forwards it to its run), wait for all, kill what is left."""
    for proc in procs:
        if signum is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
    deadline = time.monotonic() + (STOP_GRACE_S + 5.0 if signum is not None else 0.0)
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, Interrupted):
            stop_child(proc, None)


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
