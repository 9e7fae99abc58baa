"""The public Python API: what the CLI does, as functions returning typed results.

Every function takes the same defaults as its command, and every result keeps the exact JSON record the
command writes (``result.record``; ``result.to_json()`` returns a copy), so a script and ``lorabench ... --json``
agree field for field::

    import lorabench

    spec = lorabench.load_spec(None, {"model": "llama-3.1-8b", "bits": 4, "rank": 16})
    est = lorabench.estimate(spec, engine="formula", gpu="A100-80GB", tokens=10_000_000)
    print(est.peak_allocated_bytes, est.fits["A100-80GB"], est.predicted_time_s)

Library warnings (torch, transformers, PEFT, bitsandbytes) raised while a function runs are not printed: they are
kept, one line each, in the record's ``library_warnings`` list (``warnings`` holds lorabench's own, e.g. module
groups an adapter skipped).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import subprocess
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lorabench.spec import LoadedSpec, RunSpec

if TYPE_CHECKING:
    from lorabench.cost import CostRow
    from lorabench.measure.options import RunOptions
    from lorabench.predict.estimate import Engine

__all__ = [
    "CostComparison",
    "EstimateResult",
    "FitReport",
    "RunResult",
    "compare_costs",
    "cost",
    "estimate",
    "fit",
    "load_spec",
    "run",
]

SpecLike = RunSpec | str | Path | Mapping[str, Any]
Device = Literal["cuda", "cpu"]

_LIBRARY_LOGGERS = ("transformers", "peft", "bitsandbytes", "torch", "torchao", "accelerate", "datasets")


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def capture_library_warnings() -> Iterator[list[str]]:
    """Collect Python warnings and library log warnings raised inside the block instead of printing them.

    Yields:
        The list the messages are appended to (``Category: message`` or ``logger: message``), de-duplicated
        when the block ends.
    """
    sink: list[str] = []
    handler = _Collect(sink)
    saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield sink
        sink.extend(f"{w.category.__name__}: {w.message}" for w in caught)
        unique = list(dict.fromkeys(" ".join(line.split()) for line in sink))
        sink[:] = unique
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate


def load_spec(source: str | Path | None = None, overrides: Mapping[str, Any] | None = None, **fields: Any) -> RunSpec:
    """Build a RunSpec from an optional config file plus overrides, as the CLI's ``--config`` and flags do.

    Args:
        source: A lorabench YAML, Axolotl YAML or PEFT ``adapter_config.json`` (str or Path), or None.
        overrides: Field values that replace the file's (None values are skipped); ``gpu`` and ``gpus`` set
            the hardware.
        **fields: More overrides, by keyword (``model="tiny", bits=4``).

    Returns:
        The validated spec.

    Raises:
        ConfigError: The file or any value is invalid (every problem listed).
    """
    from lorabench.spec import load_spec as _load

    given = {**(overrides or {}), **fields}
    return _load(source, given or None)


def _has(spec: RunSpec, name: str, value: Any) -> bool:
    if name == "gpu":
        return bool(spec.hardware.gpu == value)
    if name == "gpus":
        return bool(spec.hardware.count == value)
    return value is None or getattr(spec, name, object()) == value


def _spec(spec: SpecLike, overrides: Mapping[str, Any] | None = None) -> RunSpec:
    if isinstance(spec, RunSpec):
        if not overrides or all(_has(spec, k, v) for k, v in overrides.items()):
            return spec
        current = spec.model_dump(mode="json")
        hardware = current.pop("hardware")
        return load_spec(None, {**current, "gpu": hardware["gpu"], "gpus": hardware["count"], **overrides})
    if isinstance(spec, Mapping):
        return load_spec(None, {**spec, **(overrides or {})})
    return load_spec(spec, overrides)


class _Result:
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A copy of the JSON record (what the command's ``--json`` / ``--out`` writes)."""
        return copy.deepcopy(self.record)

    @property
    def warnings(self) -> list[str]:
        """Library warnings captured while the call ran (not printed)."""
        return list(self.record.get("library_warnings", []))


@dataclass(frozen=True)
class EstimateResult(_Result):
    """``lorabench estimate``'s record (schema ``lorabench.estimate``) with typed accessors.

    Attributes:
        record: The JSON-ready record.
        spec: The spec it was computed for.
    """

    record: dict[str, Any]
    spec: RunSpec

    @property
    def base_params(self) -> int:
        """Base model parameters (exact, from the module graph)."""
        return int(self.record["base_params"])

    @property
    def trainable_params(self) -> int:
        """Trainable adapter parameters."""
        return int(self.record["trainable_params"])

    @property
    def weights_bytes(self) -> int:
        """Base at the spec's bits plus the adapter, as loaded."""
        return int(self.record["weights_bytes"])

    @property
    def peak_allocated_bytes(self) -> int | None:
        """Peak allocated bytes per GPU of a training step (None with ``engine="none"``)."""
        value = self.record.get("peak_allocated_bytes")
        return None if value is None else int(value)

    @property
    def device_total_bytes(self) -> int | None:
        """Peak plus allocator slack and CUDA context per GPU (None with ``engine="none"``)."""
        value = self.record.get("device_total_bytes")
        return None if value is None else int(value)

    @property
    def fits(self) -> dict[str, bool] | None:
        """Catalog GPU name to whether the device total fits (CUDA memory engines only)."""
        fits = self.record.get("fits")
        return None if fits is None else {str(k): bool(v) for k, v in fits.items()}

    @property
    def predicted_time_s(self) -> float | None:
        """Predicted wall time of the job (only with ``tokens``)."""
        value = self.record.get("predicted_time_s")
        return None if value is None else float(value)


def estimate(
    spec: SpecLike,
    *,
    engine: Engine = "simulate",
    device: Device = "cuda",
    gpu: str | None = None,
    gpus: int | None = None,
    tokens: int | None = None,
    calibration: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    loaded: LoadedSpec | None = None,
) -> EstimateResult:
    """Predict parameters, weight bytes, peak memory (and which GPUs fit) and time, as ``lorabench estimate``.

    Args:
        spec: A RunSpec, a config file path (str or Path) or a mapping of spec fields.
        engine: Peak-memory engine: ``simulate`` (the fake-tensor simulation of the real step, seconds; the
            CLI's default), ``formula`` (closed form fitted to it, instant) or ``none``.
        device: ``cuda`` (default) or ``cpu`` training.
        gpu: GPU of the run (catalog name or alias); needed for a time prediction.
        gpus: Number of GPUs.
        tokens: Tokens the whole job processes, for the time prediction.
        calibration: A ``lorabench calibrate`` file for the time engine.
        overrides: More spec fields that replace the spec's.
        loaded: The config file the spec came from (:func:`lorabench.spec.load_spec_source`), for the
            record's ``config_source`` and ``ignored_keys``; found by itself when ``spec`` is a path.

    Returns:
        The estimate; ``.record`` is exactly what ``lorabench estimate --json`` prints.

    Raises:
        ConfigError: Invalid spec, engine, device, tokens or calibration.
        ModelError: Unknown model or target module.
        CatalogError: Unknown GPU.
    """
    from lorabench.errors import ConfigError
    from lorabench.hardware import resolve_gpu
    from lorabench.predict.estimate import estimate as _estimate

    if engine not in ("simulate", "formula", "none"):
        raise ConfigError(f"engine: must be simulate, formula or none (got {engine!r})")
    if device not in ("cuda", "cpu"):
        raise ConfigError(f"device: must be cuda or cpu (got {device!r})")
    extra = {k: v for k, v in {"gpu": gpu, "gpus": gpus}.items() if v is not None}
    if loaded is None and isinstance(spec, (str, Path)):
        from lorabench.spec import load_spec_source

        loaded = load_spec_source(Path(spec), {**(overrides or {}), **extra})
        spec = loaded.spec
    run_spec = _spec(spec, {**(overrides or {}), **extra})
    if run_spec.hardware.gpu is not None:
        resolve_gpu(run_spec.hardware.gpu)  # an unknown GPU is bad input, before any work
    with capture_library_warnings() as caught:
        record = _estimate(
            run_spec,
            engine=engine,
            device=device,
            tokens=tokens,
            gpu=run_spec.hardware.gpu,
            calibration=None if calibration is None else Path(calibration),
            loaded=loaded,
        )
    record["library_warnings"] = list(caught)
    return EstimateResult(record=record, spec=run_spec)


@dataclass(frozen=True)
class FitReport(_Result):
    """``lorabench fit``'s record (schema ``lorabench.fit``) with typed accessors.

    Attributes:
        record: The JSON-ready record.
    """

    record: dict[str, Any]

    @property
    def largest_micro_batch(self) -> int | None:
        """The largest micro batch that fits at the spec's sequence length (None: not even 1)."""
        value = self.record["largest_micro_batch"]["value"]
        return None if value is None else int(value)

    @property
    def largest_seq_len(self) -> int | None:
        """The largest sequence length that fits at the spec's micro batch (None: not even 1)."""
        value = self.record["largest_seq_len"]["value"]
        return None if value is None else int(value)


def fit(spec: SpecLike, *, gpu: str, gpus: int | None = None, overrides: Mapping[str, Any] | None = None) -> FitReport:
    """The largest micro batch and sequence length that fit on one GPU (formula engine), as ``lorabench fit``.

    Args:
        spec: A RunSpec, a config file path or a mapping of spec fields.
        gpu: The GPU (catalog name or alias, e.g. ``A5000``).
        gpus: Number of GPUs (more than one: DDP unless the spec's parallelism says otherwise).
        overrides: More spec fields that replace the spec's.

    Raises:
        ConfigError: Invalid spec.
        ModelError: Unknown model or target module.
        CatalogError: Unknown GPU.
    """
    from lorabench.predict.fit import fit_record

    extra = {k: v for k, v in {"gpu": gpu, "gpus": gpus}.items() if v is not None}
    run_spec = _spec(spec, {**(overrides or {}), **extra})
    with capture_library_warnings() as caught:
        record = fit_record(run_spec, gpu, gpus)
    record["library_warnings"] = list(caught)
    return FitReport(record=record)


@dataclass(frozen=True)
class CostComparison(_Result):
    """``lorabench cost``'s record (schema ``lorabench.cost``) and its rows.

    Attributes:
        record: What ``lorabench cost --out`` writes.
        rows: The comparison rows (self-hosted, services, references).
    """

    record: dict[str, Any]
    rows: tuple[CostRow, ...]


def cost(scenario: str | Path, *, catalogs: Sequence[str | Path] = ()) -> CostComparison:
    """Compare self-hosted fine-tuning with commercial services, as ``lorabench cost SCENARIO``.

    Args:
        scenario: The scenario YAML.
        catalogs: Extra price catalog files (an entry with an existing id replaces it).

    Raises:
        ConfigError: Invalid scenario.
        CatalogError: Invalid catalog or unknown price.
    """
    from lorabench.cost import evaluate, load_catalog, load_scenario
    from lorabench.report import cost_record

    rows = evaluate(load_scenario(Path(scenario)), load_catalog([Path(c) for c in catalogs]))
    return CostComparison(record=cost_record(rows), rows=tuple(rows))


@dataclass(frozen=True)
class RunResult(_Result):
    """A measured run's record (``result.json`` in ``folder``).

    Attributes:
        record: The run record.
        folder: Where the run wrote its files.
    """

    record: dict[str, Any]
    folder: Path

    @property
    def status(self) -> str:
        """``ok``, ``oom`` or ``failed``."""
        return str(self.record["status"])


def _launch(
    spec: dict[str, Any], options: dict[str, Any], folder: Path, nproc: int, progress: bool = False
) -> dict[str, Any]:
    from lorabench.errors import MeasurementError
    from lorabench.measure.options import RunOptions
    from lorabench.measure.record import read_run_record
    from lorabench.measure.worker import worker_command, write_launch_file

    launch = folder / "launch.json"
    write_launch_file(launch, spec, options)
    if nproc == 1:
        from lorabench.measure.progress import StepProgress
        from lorabench.measure.runner import run_training

        run_spec, run_options = RunSpec.model_validate(spec), RunOptions.model_validate(options)
        if not progress:
            return run_training(run_spec, run_options)
        with StepProgress(f"training {run_spec.label()}") as bar:
            return run_training(run_spec, run_options, on_step=bar)
    command = worker_command(launch, nproc)
    from lorabench.errors import Interrupted
    from lorabench.interrupts import stop_child

    if progress:
        stderr, returncode = _launch_with_progress(command, folder, RunSpec.model_validate(spec).label(), nproc)
    else:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = proc.communicate()
        except BaseException as exc:  # forward a signal to torchrun (it stops its ranks) and wait: no orphaned rank
            stop_child(proc, exc.signum if isinstance(exc, Interrupted) else None)
            raise
        returncode = proc.returncode
    try:
        return read_run_record(folder)
    except MeasurementError:
        tail = " ".join((stderr or "").strip().splitlines()[-3:])
        raise MeasurementError(f"distributed run wrote no record (exit {returncode}): {tail}") from None


def _launch_with_progress(command: list[str], folder: Path, label: str, nproc: int) -> tuple[str, int]:
    """Run torchrun while a progress bar follows rank 0's step lines; return (stderr, exit status)."""
    import os
    import tempfile
    import time

    from lorabench.errors import Interrupted
    from lorabench.interrupts import stop_child
    from lorabench.measure.progress import StepProgress
    from lorabench.measure.worker import PROGRESS_FILE_ENV, read_progress

    path = folder / "progress.jsonl"
    path.unlink(missing_ok=True)
    env = {**os.environ, PROGRESS_FILE_ENV: str(path)}
    offset = 0
    with tempfile.TemporaryFile("w+") as err, StepProgress(f"training {label} on {nproc} processes") as bar:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
        try:
            while True:
                done = proc.poll() is not None
                steps, offset = read_progress(path, offset)
                for step in steps:
                    bar(*step)
                if done:
                    break
                time.sleep(0.2)
        except BaseException as exc:  # forward a signal to torchrun (it stops its ranks) and wait: no orphaned rank
            stop_child(proc, exc.signum if isinstance(exc, Interrupted) else None)
            raise
        err.seek(0)
        return err.read(), int(proc.returncode)


def run(
    spec: SpecLike,
    *,
    out: str | Path,
    options: RunOptions | Mapping[str, Any] | None = None,
    nproc: int = 1,
    progress: bool = False,
) -> RunResult:
    """Fine-tune for real and measure, as ``lorabench run``: one process, or ``nproc`` via torchrun.

    Args:
        spec: A RunSpec, a config file path or a mapping of spec fields.
        out: The run folder (``result.json``, the adapter, logs).
        options: :class:`lorabench.measure.options.RunOptions` fields other than ``out`` (dataset,
            examples, max_steps, warmup_steps, seed, random_weights, batching, usd_per_gpu_hour); the CLI's
            defaults otherwise.
        nproc: Data-parallel processes.
        progress: Show a progress bar (step, loss, tokens/s, ETA) on stderr while a one-process run trains.

    Returns:
        The run; ``status`` is ``ok``, ``oom`` or ``failed`` (a failed run is a result, not an exception).

    Raises:
        ConfigError: Invalid spec, options or dataset.
        ModelError: Unknown model or target module.
        MeasurementError: A distributed run wrote no record.
    """
    from pydantic import ValidationError

    from lorabench.errors import ConfigError
    from lorabench.measure.options import RunOptions
    from lorabench.measure.runner import check_engine, load_records
    from lorabench.predict import account

    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"nproc: must be >= 1 (got {nproc!r})")
    run_spec = _spec(spec)
    if nproc > 1 and run_spec.hardware.count != nproc:
        run_spec = _spec(run_spec, {"gpus": nproc})
    folder = Path(out)
    if isinstance(options, RunOptions):
        run_options = options.model_copy(update={"out": folder})
    else:
        try:
            run_options = RunOptions.model_validate({**(options or {}), "out": folder})
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in err['loc'])}: {str(err['msg']).removeprefix('Value error, ')}"
                for err in exc.errors()
            ]
            raise ConfigError("; ".join(problems)) from None
    account(run_spec)  # unknown model or target module fails here, before anything runs
    check_engine(run_spec)
    load_records(run_options)  # missing, empty or malformed dataset fails here (the line is named)
    record = _launch(run_spec.model_dump(mode="json"), run_options.model_dump(mode="json"), folder, nproc, progress)
    return RunResult(record=record, folder=folder)


def compare_costs(scenario: str | Path, *, catalogs: Sequence[str | Path] = ()) -> CostComparison:
    """:func:`cost` under the name ``lorabench`` exports it by (``lorabench.cost`` is the cost package)."""
    return cost(scenario, catalogs=catalogs)


def cost_scenario(scenario: Mapping[str, Any], *, catalogs: Sequence[str | Path] = ()) -> CostComparison:
    """:func:`cost` for a scenario given as a mapping (the YAML's content) instead of a file.

    Relative paths in it are taken from the current directory.

    Args:
        scenario: The scenario's fields: dataset, epochs, self_hosted, services, references.
        catalogs: Extra price catalog files (an entry with an existing id replaces it).

    Raises:
        ConfigError: Invalid scenario (every problem, field named).
        CatalogError: Invalid catalog or unknown price.
    """
    from pydantic import ValidationError

    from lorabench.cost import Scenario, evaluate, load_catalog
    from lorabench.errors import ConfigError
    from lorabench.report import cost_record

    try:
        parsed = Scenario.model_validate(dict(scenario))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{loc}: {msg}" if loc else msg)
        raise ConfigError("scenario: " + "; ".join(problems)) from None
    rows = evaluate(parsed, load_catalog([Path(c) for c in catalogs]))
    return CostComparison(record=cost_record(rows), rows=tuple(rows))


def catalog_record(catalogs: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Every price with its date and source, as ``lorabench catalog --json`` prints it.

    Returns:
        ``gpu_rates``, ``services`` and ``references``: lists of catalog entries.
    """
    from lorabench.cost import load_catalog

    loaded = load_catalog([Path(c) for c in catalogs])
    return {
        "gpu_rates": [e.model_dump(mode="json") for e in loaded.gpu_rates.values()],
        "services": [e.model_dump(mode="json") for e in loaded.services.values()],
        "references": [e.model_dump(mode="json") for e in loaded.references.values()],
    }


def models_record() -> dict[str, Any]:
    """The architecture catalog, as ``lorabench models --json`` prints it (name to entry)."""
    from lorabench.models import architecture_catalog

    return {key: entry.model_dump(mode="json") for key, entry in architecture_catalog().items()}


def gpus_record() -> dict[str, Any]:
    """The GPU catalog's datasheet facts (key to entry), with each entry's source and date."""
    from lorabench.hardware import gpu_catalog

    return {key: spec.model_dump(mode="json") for key, spec in gpu_catalog().items()}
