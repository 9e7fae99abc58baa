"""The Ray backend of ``lorabench sweep``: one Ray task per configuration, recorded exactly once by the driver.

Each run becomes a Ray task that asks for what its spec needs (``num_gpus`` per process on a cluster with GPUs,
``num_cpus`` per process on a CPU-only one; a ``STRICT_PACK`` placement group for runs of several processes, so their
GPUs are on one node). The task runs the same subprocess-per-run worker the local backend runs
(:func:`lorabench.measure.sweep.execute`, hence :func:`lorabench.measure.worker.worker_command`), but into a scratch
folder on its node, and returns the record and the files the run wrote (its adapter). Only the driver writes into
the sweep folder, each record with a create-if-absent link, so:

- a node that dies mid-run: Ray re-runs the task elsewhere (``max_retries``); the dead node's half-run wrote into its
  own scratch folder, never into the sweep;
- a driver that dies: its tasks die with it (Ray fate-shares tasks with their owner) and its ledger claims are taken
  over by the rerun, which skips every recorded run, whichever backend recorded it;
- a record is never rewritten: if one exists when a result comes back (another sweep on the same folder got there
  first), the result is discarded and counted.

The matrix may pin configurations to a GPU type through an optional ``ray`` section, keyed by the spec's
``hardware.gpu``::

    ray:
      pin:
        A100-80GB: {accelerator_type: A100}        # Ray's accelerator type of the node
        RTX4090: {resources: {rtx4090: 1}}         # a custom resource the nodes were started with

Ray is imported only here, only when the backend is asked for: ``pip install 'lorabench[ray]'``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lorabench.errors import ConfigError, LorabenchError, MeasurementError
from lorabench.measure.ledger import Ledger
from lorabench.measure.record import RECORD_NAME, read_run_record
from lorabench.measure.sweep import PlannedRun, Sweep, prepare, remove_stale_temporaries
from lorabench.records import write_bytes_atomic

__all__ = [
    "RAY_TESTED_VERSION",
    "Pin",
    "RayConnection",
    "RaySweepResult",
    "RunResources",
    "import_ray",
    "load_pins",
    "resources_for",
    "run_sweep_ray",
    "unsatisfiable",
    "write_record_if_absent",
]

RAY_TESTED_VERSION = "2.60.0"
MAX_RETRIES = 3  # Ray re-runs a task whose worker or node died this many times
MAX_IN_FLIGHT = 1000  # tasks submitted and not yet collected; the rest wait in the driver
_NOT_COLLECTED = frozenset({RECORD_NAME, "launch.json"})  # the driver writes the record itself; launch is scratch

ProgressHook = Callable[[Mapping[str, int], Sequence[str]], None]


def import_ray() -> Any:
    """Import Ray, or say in one line how to install it.

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--backend ray: Ray is not installed; pip install 'lorabench[ray]' (tested with ray {RAY_TESTED_VERSION})"
        ) from None
    return ray


@dataclass(frozen=True)
class Pin:
    """Where configurations naming one GPU type may run: a Ray accelerator type and/or custom resources."""

    accelerator_type: str | None = None
    resources: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResources:
    """What one run asks Ray for."""

    num_cpus: float
    num_gpus: float
    resources: Mapping[str, float]
    accelerator_type: str | None
    packed: bool  # several processes: one STRICT_PACK placement group bundle, so they share a node

    def demand(self) -> dict[str, float]:
        """The run's demand as node resources (Ray's names: CPU, GPU, custom, ``accelerator_type:X``)."""
        wanted = {"CPU": self.num_cpus, **({"GPU": self.num_gpus} if self.num_gpus else {}), **self.resources}
        if self.accelerator_type is not None:
            wanted[f"accelerator_type:{self.accelerator_type}"] = 0.001  # what Ray's accelerator_type= asks
        return wanted


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def load_pins(sweep: Sweep) -> dict[str, Pin]:
    """Read the matrix's optional ``ray.pin`` section: ``{hardware.gpu: {accelerator_type, resources}}``.

    Raises:
        ConfigError: A malformed section, or a pin naming a GPU no configuration of the sweep names.
    """
    if sweep.matrix is None:
        return {}
    where = f"{sweep.matrix}: ray"
    try:
        section = (yaml.safe_load(sweep.matrix.read_text("utf-8")) or {}).get("ray") or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:  # load_sweep read it already; kept for safety
        raise ConfigError(f"{sweep.matrix}: cannot read the sweep matrix ({exc})") from None
    if not isinstance(section, dict) or set(section) - {"pin"}:
        raise ConfigError(f"{where}: expected a mapping with one key, pin")
    pins_raw = section.get("pin") or {}
    if not isinstance(pins_raw, dict):
        raise ConfigError(f"{where}.pin: expected a mapping of hardware.gpu -> {{accelerator_type, resources}}")
    named = sorted({r.spec.hardware.gpu for r in sweep.runs if r.spec.hardware.gpu is not None})
    pins = {}
    for gpu, raw in pins_raw.items():
        key = f"{where}.pin.{gpu}"
        if str(gpu) not in named:
            raise ConfigError(
                f"{key}: no configuration has hardware.gpu {gpu!r} (the sweep names: {', '.join(named) or 'none'})"
            )
        if not isinstance(raw, dict) or not raw or set(raw) - {"accelerator_type", "resources"}:
            raise ConfigError(f"{key}: expected a mapping with accelerator_type (a string) and/or resources")
        accelerator = raw.get("accelerator_type")
        if accelerator is not None and (not isinstance(accelerator, str) or not accelerator):
            raise ConfigError(f"{key}.accelerator_type: expected a non-empty string such as A100")
        resources = raw.get("resources") or {}
        if not isinstance(resources, dict) or not all(
            isinstance(k, str) and k and _number(v) for k, v in resources.items()
        ):
            raise ConfigError(f"{key}.resources: expected a mapping of resource name -> positive number")
        clash = sorted(set(resources) & {"CPU", "GPU", "memory", "object_store_memory"})
        if clash:
            raise ConfigError(f"{key}.resources: {', '.join(clash)} are set from the spec, not pinned")
        pins[str(gpu)] = Pin(accelerator, {k: float(v) for k, v in resources.items()})
    return pins


def resources_for(run: PlannedRun, cluster_has_gpus: bool, pins: Mapping[str, Pin]) -> RunResources:
    """What ``run`` asks for: one GPU (or, on a CPU-only cluster, one CPU) per process, and its GPU type's pin."""
    nproc = run.spec.hardware.count if run.spec.parallelism != "single" else 1
    pin = pins.get(run.spec.hardware.gpu or "", Pin())
    return RunResources(
        num_cpus=float(nproc),
        num_gpus=float(nproc) if cluster_has_gpus else 0.0,
        resources=dict(pin.resources),
        accelerator_type=pin.accelerator_type,
        packed=nproc > 1,
    )


def unsatisfiable(demand: Mapping[str, float], nodes: Sequence[Mapping[str, Any]]) -> bool:
    """True when no alive node of ``nodes`` (``ray.nodes()``) has every resource of ``demand`` in that amount."""
    for node in nodes:
        if not node.get("Alive"):
            continue
        total = node.get("Resources") or {}
        if all(float(total.get(name, 0.0)) >= amount for name, amount in demand.items()):
            return False
    return True


def write_record_if_absent(folder: Path, record: Mapping[str, Any]) -> bool:
    """Write ``folder/result.json`` only if it does not exist; False (nothing written) when it does.

    The record is written to a temporary file and fsynced, then hard-linked to its name (``link`` fails on an
    existing name, unlike ``rename``), so it appears complete or not at all and is never replaced.

    Raises:
        MeasurementError: The folder cannot be written.
    """
    import json

    path = folder / RECORD_NAME
    text = json.dumps(dict(record), indent=2, allow_nan=False) + "\n"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{RECORD_NAME}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot write record ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot write record ({exc.strerror or exc})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def _collect_files(folder: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.as_posix() not in _NOT_COLLECTED and not path.name.startswith("."):
            files[rel.as_posix()] = path.read_bytes()
    return files


def run_on_node(
    run_id: str, spec: dict[str, Any], options: dict[str, Any], timeout_s: float | None, driver_version: str
) -> dict[str, Any]:
    """The body of one Ray task: run the configuration in a scratch folder on this node and return what it wrote.

    Returns:
        ``{"record", "files", "placement"}``, or ``{"error", "message"}`` when the run rejected its input or the
        node's lorabench differs from the driver's.
    """
    import ray

    import lorabench
    from lorabench.measure.options import RunOptions
    from lorabench.measure.sweep import execute
    from lorabench.spec import RunSpec

    if lorabench.__version__ != driver_version:
        message = f"node {socket.gethostname()} has lorabench {lorabench.__version__}, the driver {driver_version}"
        return {"error": "environment", "message": message}
    context = ray.get_runtime_context()
    with tempfile.TemporaryDirectory(prefix="lorabench-ray-") as scratch:
        folder = Path(scratch) / run_id
        run = PlannedRun(
            run_id,
            RunSpec.model_validate(spec),
            RunOptions.model_validate({**options, "out": str(folder)}),
            repeat=0,  # not used by execute
            config_id="",
        )
        try:
            record = execute(run, timeout_s)
        except LorabenchError as exc:
            return {"error": "config", "message": str(exc)}
        files = _collect_files(folder)
    gpus = context.get_accelerator_ids().get("GPU", [])
    placement = {
        "backend": "ray",
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "gpu_ids": [str(g) for g in gpus],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "ray_version": ray.__version__,
    }
    return {"record": record, "files": files, "placement": placement}


@dataclass
class RaySweepResult:
    """What a Ray sweep did: every run's record, and what this driver wrote."""

    records: list[dict[str, Any]]
    written: int = 0  # records this driver wrote
    discarded: int = 0  # results dropped because the run was recorded meanwhile (never rewritten)
    per_node: Counter[str] = field(default_factory=Counter)


def _node_label(placement: Mapping[str, Any]) -> str:
    return f"{placement.get('hostname')}:{str(placement.get('node_id'))[:8]}"


def _accelerator_of(nodes: Sequence[Mapping[str, Any]], node_id: str) -> str | None:
    for node in nodes:
        if node.get("NodeID") == node_id:
            types = [k.split(":", 1)[1] for k in (node.get("Resources") or {}) if k.startswith("accelerator_type:")]
            return types[0] if types else None
    return None


class _Driver:
    """Submits claimed runs as Ray tasks, collects their results and writes each record once."""

    def __init__(
        self, cluster: RayConnection, sweep: Sweep, ledger: Ledger, timeout_s: float | None, max_retries: int
    ) -> None:
        import lorabench

        self.ray, self.sweep, self.ledger = cluster.ray, sweep, ledger
        self.by_id = {r.run_id: r for r in sweep.runs}
        self.nodes = cluster.nodes
        self.has_gpus, self.pins = cluster.has_gpus, cluster.pins
        self.remote = self.ray.remote(run_on_node)
        self.timeout_s, self.max_retries, self.version = timeout_s, max_retries, lorabench.__version__
        self.in_flight: dict[Any, tuple[PlannedRun, Any]] = {}  # ref -> (run, placement group or None)
        self.result = RaySweepResult(records=[])
        self.lost: dict[str, str] = {}  # run id -> why Ray gave up on it (not claimed again by this driver)

    def claimable(self) -> list[str]:
        return [run_id for run_id in self.by_id if run_id not in self.lost]

    def submit(self, run: PlannedRun) -> None:
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        need = resources_for(run, self.has_gpus, self.pins)
        options: dict[str, Any] = {
            "num_cpus": need.num_cpus,
            "num_gpus": need.num_gpus,
            "max_retries": self.max_retries,
            "retry_exceptions": False,  # a run's own failure is a result, not something to retry
        }
        if need.resources:
            options["resources"] = dict(need.resources)
        if need.accelerator_type is not None:
            options["accelerator_type"] = need.accelerator_type
        group = None
        if need.packed:
            bundle = {k: v for k, v in need.demand().items() if v}
            group = placement_group([bundle], strategy="STRICT_PACK")
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=0)
            options.pop("accelerator_type", None)  # inside the bundle's demand already
            options.pop("resources", None)
        ref = self.remote.options(**options).remote(
            run.run_id,
            run.spec.model_dump(mode="json"),
            {k: v for k, v in run.options.model_dump(mode="json").items() if k != "out"},
            self.timeout_s,
            self.version,
        )
        self.in_flight[ref] = (run, group)

    def claim_more(self) -> None:
        while len(self.in_flight) < MAX_IN_FLIGHT:
            run_id = self.ledger.claim(self.claimable())
            if run_id is None:
                return
            run = self.by_id[run_id]
            if run.done():  # recorded by a process that died before telling the ledger
                self.ledger.finish(run_id, str(read_run_record(run.folder).get("status")))
                continue
            remove_stale_temporaries(run.folder)
            self.submit(run)

    def collect(self, ref: Any) -> None:
        from ray.util.placement_group import remove_placement_group

        run, group = self.in_flight.pop(ref)
        try:
            outcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # retries used up: infrastructure, not a run result
            self.ledger.release(run.run_id)
            self.lost[run.run_id] = " ".join(str(exc).split())[:300]
            return
        finally:
            if group is not None:
                remove_placement_group(group)
        if "error" in outcome:
            self.ledger.release(run.run_id)
            raise ConfigError(f"{run.run_id}: {outcome['message']}")
        self.commit(run, outcome)

    def commit(self, run: PlannedRun, outcome: Mapping[str, Any]) -> None:
        placement = dict(outcome["placement"])
        if str(placement["node_id"]) not in {n.get("NodeID") for n in self.nodes}:
            self.nodes = list(self.ray.nodes())  # a node that joined after the start
        placement["accelerator_type"] = _accelerator_of(self.nodes, str(placement["node_id"]))
        record = dict(outcome["record"])
        names = (record.get("environment") or {}).get("device_names") or [None]
        placement["device_name"] = names[0]
        record["options"] = {**(record.get("options") or {}), "out": str(run.folder)}
        record["placement"] = placement
        if run.done():
            self.result.discarded += 1
        else:
            for rel, data in outcome["files"].items():
                target = (run.folder / rel).resolve()
                if not target.is_relative_to(run.folder.resolve()):
                    raise MeasurementError(f"{run.run_id}: the task returned a file outside its folder ({rel})")
                write_bytes_atomic(target, data, what="run file", error=MeasurementError)
            if write_record_if_absent(run.folder, record):
                self.result.written += 1
                self.result.per_node[_node_label(placement)] += 1
            else:
                self.result.discarded += 1
        self.ledger.finish(run.run_id, str(read_run_record(run.folder).get("status")))

    def cancel_all(self) -> None:
        for ref, (run, _) in list(self.in_flight.items()):
            self.ray.cancel(ref, force=True)
            self.ledger.release(run.run_id)
        self.in_flight.clear()


class RayConnection:
    """This process connected to a Ray cluster as a sweep's driver, with the sweep's asks checked against it.

    On entering: the matrix's pins are read, the cluster is reached (``ray.init``) and every run's demand is checked
    against its nodes, so a sweep no node can host fails in one line before anything is written. While connected,
    Ray's messages to the driver (a task retried after its node died) go to stderr, keeping stdout for ``--json``.

    Args:
        sweep: The expanded matrix.
        address: ``auto``, ``HOST:PORT``, ``ray://HOST:PORT`` or ``local`` (see :func:`run_sweep_ray`).

    Raises:
        ConfigError: Ray missing, bad pins, no cluster, or a run no node can host.
    """

    def __init__(self, sweep: Sweep, address: str = "auto") -> None:
        self.ray = import_ray()
        self.sweep, self.address = sweep, address
        self.pins = load_pins(sweep)
        self.nodes: list[dict[str, Any]] = []
        self.has_gpus = False
        self._stdout = contextlib.redirect_stdout(sys.stderr)

    def __enter__(self) -> RayConnection:
        self._stdout.__enter__()
        try:
            _connect(self.ray, self.address)
            try:
                self.nodes = list(self.ray.nodes())
                alive = [n for n in self.nodes if n.get("Alive")]
                self.has_gpus = any(float((n.get("Resources") or {}).get("GPU", 0)) > 0 for n in alive)
                self._check_satisfiable()
            except BaseException:
                self.ray.shutdown()
                raise
        except BaseException:
            self._stdout.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.ray.shutdown()
        finally:
            self._stdout.__exit__(None, None, None)

    def _check_satisfiable(self) -> None:
        for run in self.sweep.runs:
            demand = resources_for(run, self.has_gpus, self.pins).demand()
            if unsatisfiable(demand, self.nodes):
                have = "; ".join(
                    f"{n.get('NodeManagerHostname')}: "
                    + ", ".join(f"{k}={v:g}" for k, v in sorted((n.get("Resources") or {}).items()) if ":" not in k)
                    for n in self.nodes
                    if n.get("Alive")
                )
                wants = ", ".join(f"{k}={v:g}" for k, v in demand.items())
                raise ConfigError(f"{run.run_id} needs {wants} but no node of the Ray cluster has that ({have})")


def _reachable(address: str, timeout_s: float = 5.0) -> str | None:
    """Why ``HOST:PORT`` cannot be reached (Ray itself would wait for minutes), or None."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None  # not HOST:PORT: let Ray say what it makes of it
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _connect(ray: Any, address: str) -> None:
    why = None if address in ("auto", "local") or address.startswith("ray://") else _reachable(address)
    if why is not None:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({why}); start one with `ray start --head`"
        )
    try:
        if address == "local":  # a one-machine cluster inside this process, for trying the backend
            ray.init(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False)
        else:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError: Ray's own, all meaning "not reached"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"--address {address}: cannot connect to a Ray cluster ({first[:300]}); start one with `ray start --head`, "
            "or pass --address HOST:6379, ray://HOST:10001 or local"
        ) from None


def _drive(ray: Any, driver: _Driver, ledger: Ledger, on_progress: ProgressHook | None, poll_s: float) -> None:
    while True:
        driver.claim_more()
        if not driver.in_flight:
            if ledger.unfinished(driver.claimable()) == 0:
                break
            time.sleep(poll_s)  # another live process holds the last runs: wait, take over if it dies
            continue
        ready, _ = ray.wait(list(driver.in_flight), num_returns=1, timeout=poll_s)
        for ref in ready:
            driver.collect(ref)
        if on_progress is not None:
            on_progress(driver.result.per_node, [r.run_id for r, _ in driver.in_flight.values()])
    if on_progress is not None:
        on_progress(driver.result.per_node, [])


def run_sweep_ray(
    sweep: Sweep,
    address: str | RayConnection = "auto",
    timeout_s: float | None = None,
    on_progress: ProgressHook | None = None,
    max_retries: int = MAX_RETRIES,
    poll_s: float = 0.5,
) -> RaySweepResult:
    """Run every unrecorded run of ``sweep`` as a Ray task; the driver (this process) writes each record once.

    Runs are claimed through the sweep's ledger like the local backend's, so a local sweep and a Ray sweep on the
    same folder share it, and the claims of a driver that died are taken over by the next one.

    Args:
        sweep: The expanded matrix.
        address: ``auto`` (the cluster ``ray start`` started on this machine), ``HOST:PORT``, ``ray://HOST:PORT``,
            ``local`` (start a one-machine cluster in this process), or an entered :class:`RayConnection`.
        timeout_s: Per-run time limit (the run subprocess is killed past it and recorded as failed).
        on_progress: Called every ``poll_s`` with the records written per node and the runs in flight.
        max_retries: How often Ray re-runs a task whose worker or node died.
        poll_s: Progress interval.

    Returns:
        Every run's record (in plan order) and what this driver wrote.

    Raises:
        ConfigError: Ray missing, no cluster, a run no node can host, or a run rejected its input.
        MeasurementError: Runs left unrecorded after Ray's retries (rerun the same command to resume).
    """
    if not isinstance(address, RayConnection):
        with RayConnection(sweep, address) as cluster:
            return run_sweep_ray(sweep, cluster, timeout_s, on_progress, max_retries, poll_s)
    prepare(sweep)
    with Ledger(sweep.out) as ledger:
        driver = _Driver(address, sweep, ledger, timeout_s, max_retries)
        try:
            _drive(address.ray, driver, ledger, on_progress, poll_s)
        except BaseException:
            driver.cancel_all()
            raise
    missing = [r.run_id for r in sweep.runs if not r.done()]
    if missing:
        raise MeasurementError(
            f"{len(missing)} run(s) unrecorded after {max_retries} Ray retries "
            f"({'; '.join(f'{k}: {v}' for k, v in list(driver.lost.items())[:2]) or 'no result'}): "
            "rerun the same command to resume"
        )
    driver.result.records = [read_run_record(r.folder) for r in sweep.runs]
    return driver.result
