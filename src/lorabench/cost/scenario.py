"""Cost scenarios: the Fine-tuning Cost Comparison table, computed from a YAML file.

A scenario names a dataset (its tokens per epoch, or a JSONL file to count), the epochs, self-hosted
runs (hours given, or a lorabench run record), commercial services and reference projects. Every
row says where each figure came from: ``input``, ``measured``, ``catalog`` (entry, date, source) or
``rule`` (a provider's published default).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lorabench.cost.catalog import Catalog, GpuRate, Reference, ServicePrice
from lorabench.cost.pricing import OPENAI_EPOCH_RULE_SOURCE, openai_default_epochs, self_hosted_cost_usd, service_bill
from lorabench.cost.tokens import count_tokens
from lorabench.errors import CatalogError, ConfigError

if TYPE_CHECKING:
    from lorabench.spec import RunSpec

__all__ = ["CostRow", "Scenario", "evaluate", "load_scenario"]

_HOUR = 3600.0


class DatasetSpec(BaseModel):
    """Tokens per epoch, given or counted from a file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # bounded so that priced figures stay finite floats (10^15 tokens is far beyond any fine-tuning job)
    tokens: int | None = Field(default=None, gt=0, le=10**15)
    examples: int | None = Field(default=None, gt=0, le=10**15)
    validation_tokens: int = Field(default=0, ge=0, le=10**15)
    path: Path | None = None
    tokenizer: Path | None = None
    fields: tuple[str, ...] = ("context", "target")
    # the dataset's format and column renaming, as `lorabench data --format/--fields` (default: detected)
    format: Literal["finlora", "alpaca", "completion", "text", "chat", "sharegpt"] | None = None
    columns: dict[str, str] | None = None
    max_tokens_per_example: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _tokens_or_path(self) -> DatasetSpec:
        if self.tokens is None and self.path is None:
            raise ValueError("dataset: give tokens (per epoch) or path (a JSONL file to count)")
        if self.tokens is not None and self.path is not None:
            raise ValueError("dataset: give tokens or path, not both")
        return self


class SelfHosted(BaseModel):
    """One self-hosted run: hours given (input), or a lorabench run record (measured)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    hours: float | None = Field(default=None, gt=0)
    results: Path | None = None
    spec: Path | dict[str, Any] | None = None
    efficiency: float | None = Field(default=None, gt=0, le=1)
    gpu: str | None = None
    count: int | None = Field(default=None, ge=1)
    usd_per_gpu_hour: float | None = Field(default=None, gt=0)
    rate: str | None = None
    provider: str | None = None
    note: str | None = Field(default=None, min_length=1)
    memory_engine: Literal["formula", "simulate"] = "formula"

    @model_validator(mode="after")
    def _one_source(self) -> SelfHosted:
        sources = [s for s in ("hours", "results", "spec") if getattr(self, s) is not None]
        if len(sources) != 1:
            raise ValueError(f"{self.name}: give exactly one of hours, results or spec (got {sources or 'none'})")
        if self.hours is not None and self.gpu is None:
            raise ValueError(f"{self.name}: hours need the gpu they ran on")
        return self


class ServiceChoice(BaseModel):
    """A service by catalog id, optionally with its own epochs."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    epochs: float | None = Field(default=None, gt=0, le=10_000)
    model: str | None = Field(default=None, min_length=1)


class Scenario(BaseModel):
    """A whole cost comparison."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dataset: DatasetSpec
    epochs: float | None = Field(default=None, gt=0, le=10_000)
    calibration: Path | None = None
    self_hosted: list[SelfHosted] = []
    services: list[ServiceChoice] = []
    references: list[str] = []
    default_epoch_rows: bool = True
    model: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _services_as_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("services"), list):
            data = {**data, "services": [{"name": s} if isinstance(s, str) else s for s in data["services"]]}
        return data


class CostRow(BaseModel):
    """One row of the cost comparison; unknown figures are None."""

    model_config = ConfigDict(allow_inf_nan=False)

    name: str
    kind: Literal["self_hosted", "service", "reference"]
    time_s: float | None = None
    gpu: str | None = None
    gpus: int | None = None
    gpu_hours: float | None = None
    cost_usd: float | None = None
    epochs: float | None = None
    billed_tokens: int | None = None
    x_vs_cheapest_self_hosted: float | None = None
    reduction_pct: float | None = None
    fits: bool | None = None
    device_total_bytes: int | None = None
    gpu_memory_bytes: int | None = None
    peak_allocated_bytes: int | None = None
    price_status: Literal["confirmed", "unconfirmed"] | None = None
    job_creation_ends: str | None = None
    provenance: dict[str, dict[str, Any]] = {}
    note: str | None = None


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario YAML; relative paths in it are taken from its folder.

    Raises:
        ConfigError: Unreadable file or invalid content (file and field named).
    """
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read scenario ({exc})") from None
    except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: nesting too deep
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with dataset, self_hosted, services, references")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"{loc}: {msg}" if loc else msg)
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
    return _rebase(scenario, path.parent)


def _rebase(scenario: Scenario, base: Path) -> Scenario:
    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else base / p

    dataset = scenario.dataset.model_copy(
        update={"path": fix(scenario.dataset.path), "tokenizer": fix(scenario.dataset.tokenizer)}
    )
    hosted = [
        h.model_copy(update={"results": fix(h.results), "spec": fix(h.spec) if isinstance(h.spec, Path) else h.spec})
        for h in scenario.self_hosted
    ]
    return scenario.model_copy(
        update={"dataset": dataset, "self_hosted": hosted, "calibration": fix(scenario.calibration)}
    )


def _catalog_prov(entry: GpuRate | ServicePrice | Reference, catalog: Catalog, section: str) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "kind": "catalog",
        "entry": entry.id,
        "prices_checked": entry.prices_checked.isoformat(),
        "price_status": entry.price_status,
        "source": entry.source,
        "file": catalog.origin.get(f"{section}:{entry.id}"),
    }
    if entry.secondary_source is not None:
        prov["secondary_source"] = entry.secondary_source
    return prov


def _rate(row: SelfHosted, gpu: str, catalog: Catalog) -> tuple[float, dict[str, Any]]:
    if row.usd_per_gpu_hour is not None:
        return row.usd_per_gpu_hour, {"kind": "input", "usd_per_gpu_hour": row.usd_per_gpu_hour}
    if row.rate is not None:
        rate = catalog.gpu_rate(row.rate)
    else:
        rates = catalog.rates_for_gpu(gpu, row.provider)
        if not rates:
            where = f" from provider {row.provider!r}" if row.provider else ""
            raise CatalogError(
                f"{row.name}: no rental rate for GPU {gpu!r}{where} in the catalog; give usd_per_gpu_hour, "
                "rate, or add one with --catalog"
            )
        rate = rates[0]
    prov = _catalog_prov(rate, catalog, "gpu_rates") | {"usd_per_gpu_hour": rate.usd_per_gpu_hour}
    if row.rate is None:
        prov["chosen_as"] = "cheapest on-demand rate for this GPU in the catalog"
    return rate.usd_per_gpu_hour, prov


def _read_run_record(path: Path) -> dict[str, Any]:
    file = path / "result.json" if path.is_dir() else path
    try:
        record = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{file}: cannot read a lorabench run record ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != "lorabench.run":
        raise ConfigError(f"{file}: not a lorabench run record (schema 'lorabench.run')")
    if record.get("status") != "ok":
        raise ConfigError(f"{file}: run status is {record.get('status')!r}, not 'ok'; its time cannot be priced")
    return record


def _load_calibration(path: Path, kind: Any) -> Any:
    try:
        return kind.from_dict(json.loads(path.read_text("utf-8")), source=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not a lorabench calibration ({exc})") from None


def _row_spec(row: SelfHosted) -> tuple[RunSpec, str, int]:
    """The spec of a ``spec:`` row on the row's hardware (a row's count with a single-GPU spec: DDP)."""
    from lorabench.spec import load_spec, parse_spec

    spec = parse_spec(row.spec, f"self_hosted {row.name}.spec") if isinstance(row.spec, dict) else load_spec(row.spec)
    gpu = row.gpu or spec.hardware.gpu
    if gpu is None:
        raise ConfigError(f"{row.name}: give the gpu the prediction is for")
    count = row.count or spec.hardware.count
    update: dict[str, Any] = {"hardware": spec.hardware.model_copy(update={"gpu": gpu, "count": count})}
    if count > 1 and spec.parallelism == "single":
        update["parallelism"] = "ddp"
    return spec.model_copy(update=update), gpu, count


def _fit_verdict(spec: RunSpec, gpu_key: str, engine: Literal["formula", "simulate"]) -> dict[str, Any]:
    """Predicted device total per GPU (under the spec's parallelism) against the card's memory."""
    from lorabench.hardware import resolve_gpu
    from lorabench.predict.estimate import estimate

    record = estimate(spec, engine=engine, device="cuda")
    total = int(record["device_total_bytes"])
    vram = resolve_gpu(gpu_key).vram_bytes
    return {
        "kind": "predicted",
        "engine": engine,
        "fits": total <= vram,
        "device_total_bytes": total,
        "gpu_memory_bytes": vram,
        "peak_allocated_bytes": int(record["peak_allocated_bytes"]),
        "per_gpu": True,
        "parallelism": spec.parallelism,
        "gpus": spec.hardware.count,
        "micro_batch": spec.micro_batch,
        "seq_len": spec.seq_len,
        "extrapolated": bool(record.get("memory_extrapolated")),
        "provenance": record["memory_provenance"],
    }


def _predicted_time(row: SelfHosted, spec: RunSpec, scenario: Scenario, tokens: int) -> tuple[float, dict[str, Any]]:
    """Predicted wall time of the whole job for a ``spec:`` row.

    The roofline engine, or the flops engine when the row fixes an ``efficiency``.
    """
    gpu, count = spec.hardware.gpu or "", spec.hardware.count
    epochs = scenario.epochs or spec.epochs
    job_tokens = round(tokens * epochs)
    note = "tokens as given (padding not counted): padding to the sequence length adds compute"
    if row.efficiency is not None:
        from lorabench.predict.time.efficiency import predict_time as flops_time

        flops = flops_time(spec, job_tokens, gpu, gpus=count, efficiency=row.efficiency)
        prov_flops = {
            "kind": "predicted",
            "engine": flops.engine,
            "tokens": flops.tokens,
            "epochs": epochs,
            "efficiency": flops.efficiency,
            "efficiency_source": flops.efficiency_source,
            "flops_total": flops.flops_total,
            "note": note,
        }
        return flops.time_s, prov_flops
    from lorabench.predict.time.roofline import RooflineCalibration, predict_time

    calibration = None
    if scenario.calibration is not None:
        calibration = _load_calibration(scenario.calibration, RooflineCalibration)
    prediction = predict_time(spec, job_tokens, gpu, calibration=calibration)
    low, high = prediction.interval_s
    prov = {
        "kind": "predicted",
        "engine": "roofline",
        "tokens": job_tokens,
        "epochs": epochs,
        "bits": spec.bits,
        "interval_s": [low, high],
        "breakdown_s": dict(prediction.breakdown_s),
        "provenance": prediction.step.provenance,
        "note": f"80% band {low / 3600:.2f}-{high / 3600:.2f} h; {note}",
    }
    return prediction.time_s, prov


def _number(metrics: dict[str, Any], key: str, where: str) -> float:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e300:
        raise ConfigError(
            f"{where}: metrics.{key} missing or not a positive number; the run cannot be scaled to the job"
        )
    return float(value)


def _measured_device(record: dict[str, Any], file: str) -> str:
    """``cpu`` or the catalog key of the GPU the record was measured on."""
    from lorabench.hardware import resolve_gpu

    metrics, env = record.get("metrics") or {}, record.get("environment") or {}
    device = metrics.get("device") or env.get("device_type")
    if device == "cpu":
        return "cpu"
    names = env.get("device_names") or []
    name = (
        names[0] if names and isinstance(names[0], str) else (record.get("spec") or {}).get("hardware", {}).get("gpu")
    )
    if device != "cuda" or not isinstance(name, str):
        raise ConfigError(
            f"{file}: the run record does not say which device it was measured on "
            "(metrics.device, environment.device_names)"
        )
    try:
        return resolve_gpu(name).key
    except CatalogError:
        raise ConfigError(
            f"{file}: measured on {name!r}, which is not in the GPU catalog; its time cannot be priced"
        ) from None


def _scaled_time(
    row: SelfHosted, scenario: Scenario, tokens: int, record: dict[str, Any]
) -> tuple[float, str, int, dict[str, Any]]:
    """A measured run scaled to the whole job: job tokens / measured non-pad tokens per second.

    Raises:
        ConfigError: The record lacks the throughput figures, or was measured on another device or GPU count
            than the row claims.
    """
    file = str(row.results)
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        raise ConfigError(f"{file}: run record has no metrics")
    measured = _measured_device(record, file)
    world = int(metrics.get("world_size") or record.get("world_size") or 1)
    claimed = row.gpu
    if claimed is not None:
        from lorabench.hardware import resolve_gpu

        claimed = resolve_gpu(claimed).key
    gpu = claimed or measured
    if measured == "cpu" and claimed is None and row.usd_per_gpu_hour is None:
        raise ConfigError(
            f"self_hosted {row.name}: {file} was measured on a CPU; give usd_per_gpu_hour (the machine's hourly "
            "rate) to price it there, or a spec: row for a predicted time on a GPU"
        )
    if gpu != measured:
        raise ConfigError(
            f"self_hosted {row.name}: {file} was measured on {measured}, not {gpu if gpu != 'cpu' else 'a GPU'}; "
            "a measured time is priced only on the device it was measured on "
            f"(use a spec: row for a predicted time on {gpu})"
        )
    count = row.count or world
    if count != world:
        raise ConfigError(
            f"self_hosted {row.name}: {file} was measured on {world} GPU(s), not {count}; use a spec: row to predict "
            f"{count} GPUs"
        )
    nonpad = _number(metrics, "nonpad_tokens", file)
    seconds = _number(metrics, "wall_time_s", file)
    steps = int(_number(metrics, "steps", file))
    recorded = metrics.get("tokens_per_s_nonpad")
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) and 0 < recorded < 1e300:
        rate, rate_how = (
            float(recorded),
            "the record's tokens_per_s_nonpad ("
            + str(metrics.get("throughput_method") or "its throughput counter")
            + ")",
        )
    else:
        rate, rate_how = nonpad / seconds, "metrics.nonpad_tokens / metrics.wall_time_s"
    spec_epochs = (record.get("spec") or {}).get("epochs")
    epochs = scenario.epochs or (float(spec_epochs) if isinstance(spec_epochs, (int, float)) else 1.0)
    job_tokens = round(tokens * epochs)
    time_s = job_tokens / rate
    tokens_per_step = nonpad / steps
    job_steps = math.ceil(job_tokens / tokens_per_step)
    step_s = tokens_per_step / rate
    arithmetic = (
        f"{tokens:,} tokens x {epochs:g} epochs = {job_tokens:,} tokens; measured {nonpad:,.0f} non-pad tokens in "
        f"{steps} steps ({seconds:.3f} s, warm-up excluded) on {count}x{gpu} = {rate:,.1f} tokens/s; "
        f"{job_tokens:,} / {rate:,.1f} = {time_s:,.0f} s ({time_s / 3600:,.2f} h) = about {job_steps:,} steps "
        f"of {step_s:.3f} s"
    )
    prov = {
        "kind": "measured",
        "record": file,
        "counter": "wall clock of the counted steps",
        "measured_device": f"{count}x{gpu}",
        "measured_steps": steps,
        "measured_nonpad_tokens": int(nonpad),
        "measured_time_s": seconds,
        "measured_tokens_per_s": rate,
        "measured_tokens_per_s_from": rate_how,
        "measured_step_time_s": step_s,
        "job_tokens": job_tokens,
        "epochs": epochs,
        "job_steps": job_steps,
        "scaling": "job tokens / measured non-pad tokens per second",
        "arithmetic": arithmetic,
        "note": "model loading, evaluation and checkpointing are not in the measured steps; a different padding "
        "share in the real dataset changes the time",
    }
    return time_s, gpu, count, prov


def _self_hosted_row(row: SelfHosted, catalog: Catalog, scenario: Scenario, tokens: int) -> CostRow:
    from lorabench.hardware import resolve_gpu

    time_prov: dict[str, Any]
    fit: dict[str, Any] | None = None
    peak: int | None = None
    if row.spec is not None:
        spec, gpu_name, count = _row_spec(row)
        fit = _fit_verdict(spec, resolve_gpu(gpu_name).key, row.memory_engine)
        if not fit["fits"]:
            gpu = resolve_gpu(gpu_name)
            return CostRow(
                name=row.name,
                kind="self_hosted",
                gpu=gpu.key,
                gpus=count,
                fits=False,
                device_total_bytes=fit["device_total_bytes"],
                gpu_memory_bytes=fit["gpu_memory_bytes"],
                peak_allocated_bytes=fit["peak_allocated_bytes"],
                provenance={"fits": fit},
                note=(
                    f"does not fit: {fit['device_total_bytes'] / 1e9:.1f} GB per GPU predicted > "
                    f"{fit['gpu_memory_bytes'] / 1e9:.1f} GB on {gpu.key} ({spec.parallelism}, {count} GPU(s)); "
                    "no time or cost"
                )
                + (f"; {row.note}" if row.note else ""),
            )
        time_s, time_prov = _predicted_time(row, spec, scenario, tokens)
        peak = fit["peak_allocated_bytes"]
    elif row.results is not None:
        record = _read_run_record(row.results)
        time_s, gpu_name, count, time_prov = _scaled_time(row, scenario, tokens, record)
        measured_peak = (record.get("metrics") or {}).get("peak_allocated_bytes")
        peak = int(measured_peak) if isinstance(measured_peak, (int, float)) else None
        fit = {"kind": "measured", "fits": True, "record": str(row.results), "note": "the run completed on this GPU"}
    elif row.hours is not None and row.gpu is not None:
        time_s, gpu_name, count = row.hours * _HOUR, row.gpu, row.count or 1
        time_prov = {"kind": "input"}
    else:  # SelfHosted's validator makes this unreachable
        raise ConfigError(f"{row.name}: hours need the gpu they ran on")
    if gpu_name == "cpu":  # a CPU run priced at the row's own hourly rate (the GPU catalog has no CPU rates)
        usd, rate_prov = _rate(row, "cpu", catalog)
        gpu_key = "cpu"
    else:
        usd, rate_prov = _rate(row, resolve_gpu(gpu_name).key, catalog)
        gpu_key = resolve_gpu(gpu_name).key
    hours = time_s / _HOUR
    provenance = {"time_s": time_prov, "cost_usd": rate_prov}
    if fit is not None:
        provenance["fits"] = fit
    return CostRow(
        name=row.name,
        kind="self_hosted",
        time_s=time_s,
        gpu=gpu_key,
        gpus=count,
        gpu_hours=hours * count,
        cost_usd=self_hosted_cost_usd(hours, count, usd),
        fits=None if fit is None else bool(fit["fits"]),
        device_total_bytes=None if fit is None else fit.get("device_total_bytes"),
        gpu_memory_bytes=None if fit is None else fit.get("gpu_memory_bytes"),
        peak_allocated_bytes=peak,
        price_status=rate_prov.get("price_status"),
        provenance=provenance,
        note=row.note,
    )


def _base_params(model: str) -> int:
    """Parameters of a model's base (lorabench's meta-device accounting)."""
    from lorabench.predict.estimate import estimate
    from lorabench.spec import RunSpec

    return int(estimate(RunSpec.model_validate({"model": model}), engine="none")["base_params"])


def _bracket(service: ServicePrice, model: str | None) -> dict[str, Any] | None:
    """Check the service's size bracket against the model; None when the service has none.

    Raises:
        ConfigError: The model is outside the bracket.
    """
    label = service.bracket_label()
    if label is None:
        return None
    if model is None:
        return {"kind": "rule", "bracket": label, "checked": False, "note": "give model: to check the size bracket"}
    params = _base_params(model)
    if not service.covers_params(params):
        raise ConfigError(
            f"service {service.id}: covers base models {label} parameters; {model} has {params / 1e9:.2f}B "
            "(choose the service's bracket for that size)"
        )
    return {"kind": "rule", "bracket": label, "checked": True, "model": model, "base_params": params}


def _scenario_model(scenario: Scenario) -> str | None:
    """The scenario's model: ``model:``, else the one model all spec rows share."""
    if scenario.model is not None:
        return scenario.model
    from lorabench.spec import load_spec

    models = set()
    for row in scenario.self_hosted:
        if isinstance(row.spec, dict) and isinstance(row.spec.get("model"), str):
            models.add(row.spec["model"])
        elif isinstance(row.spec, Path):
            models.add(load_spec(row.spec).model)
    return models.pop() if len(models) == 1 else None


def _service_rows(
    choice: ServiceChoice, scenario: Scenario, tokens: int, examples: int | None, catalog: Catalog
) -> list[CostRow]:
    service = catalog.service(choice.name)
    bracket = _bracket(service, choice.model or _scenario_model(scenario))
    wind_down = service.wind_down_label()
    rows = []
    epochs = choice.epochs or scenario.epochs
    default: int | None = None
    if service.epochs_rule == "openai_default" and examples is not None:
        default = openai_default_epochs(examples)
    elif service.epochs_rule == "fixed":
        default = service.default_epochs
    rule_prov = {"kind": "rule", "rule": service.epochs_rule, "examples": examples, "source": OPENAI_EPOCH_RULE_SOURCE}
    if service.epochs_rule == "fixed":
        rule_prov = {"kind": "catalog", "entry": service.id, "default_epochs": default, "source": service.source}
    plans: list[tuple[float, dict[str, Any], str]] = []
    if epochs is not None:
        plans.append((epochs, {"kind": "input"}, f"{service.display_name}"))
        if scenario.default_epoch_rows and default is not None and default != epochs:
            plans.append(
                (
                    float(default),
                    rule_prov,
                    f"{service.display_name} (provider default: {default} epoch{'s' if default != 1 else ''})",
                )
            )
    elif default is not None:
        plans.append(
            (
                float(default),
                rule_prov,
                f"{service.display_name} (provider default: {default} epoch{'s' if default != 1 else ''})",
            )
        )
    else:
        why = (
            "give examples in dataset"
            if service.epochs_rule == "openai_default"
            else "its default is not in the catalog"
        )
        raise ConfigError(f"service {service.id}: no epochs given and the provider's default cannot be applied ({why})")
    for n_epochs, epochs_prov, label in plans:
        bill = service_bill(service, tokens, n_epochs, scenario.dataset.validation_tokens)
        provenance: dict[str, dict[str, Any]] = {
            "epochs": epochs_prov,
            "cost_usd": _catalog_prov(service, catalog, "services")
            | {"train_usd_per_mtok": service.train_usd_per_mtok},
        }
        if bracket is not None:
            provenance["bracket"] = bracket
        if wind_down is not None and service.job_creation_ends is not None:
            provenance["availability"] = {
                "kind": "catalog",
                "job_creation_ends": service.job_creation_ends.isoformat(),
                "note": service.wind_down_note,
                "source": service.wind_down_source,
            }
        notes = [
            (service.note if bill.cost_usd is None else None)
            or ("minimum charge applied" if bill.min_charge_applied else None),
            wind_down,
            None
            if bracket is None or bracket["checked"]
            else f"size bracket {bracket['bracket']} not checked (give model:)",
        ]
        rows.append(
            CostRow(
                name=label,
                kind="service",
                epochs=n_epochs,
                billed_tokens=bill.billed_tokens,
                cost_usd=bill.cost_usd,
                price_status=service.price_status,
                job_creation_ends=None if service.job_creation_ends is None else service.job_creation_ends.isoformat(),
                provenance=provenance,
                note="; ".join(n for n in notes if n) or None,
            )
        )
    return rows


def _reference_row(name: str, catalog: Catalog) -> CostRow:
    from lorabench.hardware import resolve_gpu

    ref = catalog.reference(name)
    prov: dict[str, dict[str, Any]] = {"time_s": _catalog_prov(ref, catalog, "references")}
    if ref.kind == "project":
        if ref.gpus is None or ref.time_s is None or ref.rate_id is None:  # checked at catalog load
            raise CatalogError(f"reference {ref.id!r}: a project needs gpus, time_s and rate_id")
        rate = catalog.gpu_rate(ref.rate_id)
        gpu_hours = ref.time_s / _HOUR * ref.gpus
        prov["cost_usd"] = _catalog_prov(rate, catalog, "gpu_rates") | {"usd_per_gpu_hour": rate.usd_per_gpu_hour}
        return CostRow(
            name=ref.display_name,
            kind="reference",
            time_s=ref.time_s,
            gpu=resolve_gpu(ref.gpu).key if ref.gpu else None,
            gpus=ref.gpus,
            gpu_hours=gpu_hours,
            cost_usd=gpu_hours * rate.usd_per_gpu_hour,
            price_status=rate.price_status,
            provenance=prov,
            note=ref.note,
        )
    prov["cost_usd"] = prov["time_s"] | {"published_cost_usd": ref.cost_usd}
    return CostRow(
        name=ref.display_name,
        kind="reference",
        time_s=ref.time_s,
        cost_usd=ref.cost_usd,
        price_status=ref.price_status,
        provenance=prov,
        note=ref.note,
    )


def evaluate(scenario: Scenario, catalog: Catalog) -> list[CostRow]:
    """Compute every row of the comparison, then the multiples against the cheapest self-hosted row.

    Args:
        scenario: A validated scenario.
        catalog: Prices to use.

    Returns:
        Rows in order: references, self-hosted, services. A ``spec:`` row that does not fit its GPU has
        ``fits`` False and no time or cost.

    Raises:
        ConfigError: A row cannot be computed from what the scenario gives.
        CatalogError: An unknown service, reference, rate or GPU.
        DataError: The dataset file cannot be counted.
    """
    dataset = scenario.dataset
    examples: int | None = dataset.examples
    token_prov: dict[str, Any] = {"kind": "input"}
    if dataset.path is not None:
        counted = count_tokens(
            dataset.path,
            dataset.tokenizer,
            dataset.fields,
            data_format=dataset.format,
            columns=dataset.columns,
            max_tokens_per_example=dataset.max_tokens_per_example,
        )
        tokens, examples = counted.total_tokens, examples or counted.examples
        token_prov = {
            "kind": "measured" if counted.exact else "estimated",
            "method": counted.method,
            "path": str(dataset.path),
        }
    elif dataset.tokens is not None:
        tokens = dataset.tokens
    else:  # DatasetSpec's validator makes this unreachable; kept for type narrowing
        raise ConfigError("dataset: give tokens or path")
    rows = [_reference_row(name, catalog) for name in scenario.references]
    rows += [_self_hosted_row(row, catalog, scenario, tokens) for row in scenario.self_hosted]
    for choice in scenario.services:
        for row in _service_rows(choice, scenario, tokens, examples, catalog):
            row.provenance["billed_tokens"] = {"tokens_per_epoch": tokens, **token_prov}
            rows.append(row)
    # a row that does not fit has no cost, so it is never the cheapest
    hosted = [r.cost_usd for r in rows if r.kind == "self_hosted" and r.cost_usd is not None and r.fits is not False]
    if hosted:
        cheapest = min(hosted)
        for row in rows:
            if row.cost_usd is not None and row.cost_usd > 0:
                row.x_vs_cheapest_self_hosted = row.cost_usd / cheapest
                row.reduction_pct = 100.0 * (1.0 - cheapest / row.cost_usd)
    return rows
