"""The estimate record: what lorabench predicts for a spec before any run.

It holds the exact parameter and weight-size accounting, the peak memory of a training step by one of two
engines (``simulate``: the real step on fake tensors, seconds; ``formula``: closed form fitted to the
simulation, microseconds) with device totals, and the time predicted by the roofline engine
(:mod:`lorabench.predict.time.roofline`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from lorabench import __version__
from lorabench.models import ResolvedModel, resolve_model
from lorabench.models.facts import library_versions, model_facts
from lorabench.predict.memory.params import BITS, Accounting, account
from lorabench.spec import LoadedSpec, RunSpec

__all__ = [
    "ESTIMATE_SCHEMA",
    "ESTIMATE_SCHEMA_VERSION",
    "estimate",
    "estimate_record",
    "module_groups_record",
    "quantization_note",
]

ESTIMATE_SCHEMA = "lorabench.estimate"
ESTIMATE_SCHEMA_VERSION = 1

_ENGINE = "meta-graph accounting"


def estimate_record(spec: RunSpec, acc: Accounting, loaded: LoadedSpec | None = None) -> dict[str, Any]:
    """Assemble the JSON-ready estimate record for ``spec`` from its accounting (and the config it came from)."""
    bits = spec.bits
    versions = library_versions()
    return {
        "schema": ESTIMATE_SCHEMA,
        "schema_version": ESTIMATE_SCHEMA_VERSION,
        "lorabench_version": __version__,
        "spec": spec.model_dump(mode="json"),
        "model": {
            "key": acc.model.key,
            "display_name": acc.model.display_name,
            "config_source": acc.model.source,
            "note": acc.model.note,
        },
        "config_source": None if loaded is None else loaded.source_record(),
        "ignored_keys": [] if loaded is None else [k.as_dict() for k in loaded.ignored_keys],
        "base_params": acc.base_params,
        "trainable_params": acc.trainable_params,
        "trainable_breakdown": {
            "lora_params": acc.lora_params,
            "dora_magnitude_params": acc.dora_magnitude_params,
            "modules_to_save_params": acc.modules_to_save_params,
        },
        "module_groups": module_groups_record(acc),
        "quantization_note": quantization_note(acc),
        "effective_dropout": acc.dropout,
        "notes": list(acc.notes),
        "warnings": list(acc.warnings),
        "trainable_percent": 100.0 * acc.trainable_params / acc.base_params,
        "adapter_bytes": acc.adapter_bytes,
        "adapter_dtype": acc.adapter_dtype,
        "base_weights_bytes": acc.base_bytes(bits),
        "quant_constant_bytes": acc.constant_bytes(bits),
        "weights_bytes": acc.weights_bytes(bits),
        "nominal_weights_bytes": acc.nominal_base_bytes(bits) + acc.adapter_bytes,
        "weights_bytes_by_bits": {str(b): acc.weights_bytes(b) for b in BITS},
        "components": [
            {
                "name": c.name,
                "params": c.params,
                "quantized_params": c.quantized_params,
                "bytes": c.bytes_by_bits[bits],
                "quant_constant_bytes": c.constant_bytes_by_bits[bits],
                "bytes_by_bits": {str(b): c.bytes_by_bits[b] for b in BITS},
            }
            for c in acc.components
        ],
        "provenance": {
            "params": f"predicted ({_ENGINE}): HF model built on the meta device from its config, PEFT applied",
            "weights_bytes": (
                f"predicted ({_ENGINE}): bf16 unquantized; 8-bit = int8 + fp32 row scales (LLM.int8); "
                "4-bit = NF4 packed + blockwise absmax (64) with double quantization (256); modules kept "
                "unquantized by transformers' bitsandbytes rule"
            ),
            "nominal_weights_bytes": (
                "arithmetic: parameters x bits/8 + adapter (ignores unquantized layers and constants)"
            ),
            "libraries": versions,
        },
    }


def module_groups_record(acc: Accounting) -> list[dict[str, Any]]:
    """Per module group: weights LoRA could adapt, how many got an adapter, what bitsandbytes quantizes."""
    return [
        {
            "group": g.name,
            "units": g.units,
            "adapted_units": g.adapted,
            "adapted": g.adapted_state,
            "params": g.params,
            "quantized_params_at_8_4_bits": g.quantized_params,
            "quantization": g.quant_verdict(),
        }
        for g in acc.module_groups
    ]


def quantization_note(acc: Accounting) -> str | None:
    """Why a k-bit base is not bits/16 of the 16-bit one, when a large share of it stays 16-bit (None otherwise)."""
    share = acc.quantized_share()
    if share >= 0.9:
        return None
    ratio = acc.base_bytes(4) / acc.base_bytes(16) if acc.base_bytes(16) else 0.0
    return (
        f"bitsandbytes quantizes only exact nn.Linear weights: {100 * share:.0f}% of the base parameters here; "
        f"the rest (fused experts, Linear subclasses, embeddings) stays 16-bit, so the 4-bit base is {ratio:.2f}x "
        "the 16-bit one (not 0.25x), and k-bit preparation upcasts those 16-bit weights to fp32 for training"
    )


Engine = Literal["none", "simulate", "formula"]


def _memory(spec: RunSpec, engine: Engine, device: Literal["cuda", "cpu"], model: ResolvedModel) -> dict[str, Any]:
    from lorabench.predict.memory.device import device_totals, fits_on_catalog_gpus, logits_bytes

    if engine == "formula":
        from lorabench.predict.memory.formula import formula_memory

        result = formula_memory(spec, device=device)
        peak, breakdown, phase = result.peak_allocated_bytes, dict(result.breakdown), result.peak_phase
        paged, seconds = result.paged_optimizer_bytes, result.seconds
        how = (
            "predicted (formula): exact static components from the meta-device module graph + activations, "
            f"temporaries and live gradients by a closed form fitted to the simulate engine (group {result.group}); "
            f"{device} kernels" + ("; CUDA allocator 512-byte blocks" if device == "cuda" else "")
        )
        notes = list(result.notes)
        extrapolated = result.extrapolated
        if result.extrapolated:
            how += "; EXTRAPOLATED: " + "; ".join(notes)
    else:
        from lorabench.predict.memory.simulation.engine import simulate

        sim = simulate(spec, device=device)
        peak, breakdown, phase = sim.peak_allocated_bytes, dict(sim.breakdown), sim.peak_phase
        paged, seconds = sim.paged_optimizer_bytes, sim.seconds
        notes = list(sim.notes)
        extrapolated = False
        how = (
            "predicted (simulate): the real training step (2 iterations) of the HF model + PEFT on fake tensors, "
            f"every storage's lifetime tracked; {device} kernels"
            + ("; CUDA allocator 512-byte blocks" if device == "cuda" else "")
        )
    config = model_facts(spec, model).config  # the shared facts: no transformers import when cached
    layers = int(getattr(config, "num_hidden_layers", 1) or 1)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    totals = device_totals(breakdown, spec, layers, cuda=device == "cuda", logits=logits_bytes(spec, vocab))
    return {
        "engine": engine,
        "device": device,
        "micro_batch": spec.micro_batch,
        "seq_len": spec.seq_len,
        "peak_allocated_bytes": totals.peak_allocated_bytes,
        "single_gpu_peak_allocated_bytes": peak,
        "breakdown": totals.breakdown,
        "peak_phase": phase,
        "paged_optimizer_bytes": paged,
        "device_total_bytes": totals.device_total_bytes,
        "device_totals": totals.to_dict(),
        "fits": fits_on_catalog_gpus(totals.device_total_bytes) if device == "cuda" else None,
        "engine_seconds": seconds,
        "memory_provenance": how,
        "memory_extrapolated": engine == "formula" and bool(extrapolated),
        "memory_notes": notes,
    }


def _time(spec: RunSpec, tokens: int, gpu: str, calibration: Path | None, model: ResolvedModel) -> dict[str, Any]:
    import json

    from lorabench.errors import ConfigError
    from lorabench.predict.time.roofline import RooflineCalibration, predict_time

    loaded = None
    if calibration is not None:
        try:
            loaded = RooflineCalibration.from_dict(json.loads(calibration.read_text("utf-8")), source=str(calibration))
        except ConfigError as exc:
            raise ConfigError(f"{calibration}: {exc}") from None
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ConfigError(f"{calibration}: not a lorabench calibration ({exc})") from None
    prediction = predict_time(spec, tokens, gpu, model=model, calibration=loaded)
    return {
        "predicted_time_s": prediction.time_s,
        "predicted_time_interval_s": list(prediction.interval_s),
        "predicted_time_breakdown_s": dict(prediction.breakdown_s),
        "time": prediction.to_json(),
    }


def estimate(
    spec: RunSpec,
    model: ResolvedModel | None = None,
    *,
    engine: Engine = "none",
    device: Literal["cuda", "cpu"] = "cuda",
    tokens: int | None = None,
    gpu: str | None = None,
    calibration: Path | None = None,
    loaded: LoadedSpec | None = None,
) -> dict[str, Any]:
    """Predict what lorabench can for ``spec`` and return the estimate record.

    Args:
        spec: The run spec.
        model: An already resolved model.
        engine: Memory engine: ``simulate`` (the fake-tensor simulation, seconds), ``formula`` (closed form
            fitted to the simulation, microseconds) or ``none``.
        device: The device the memory is predicted for (``cuda`` unless you train on a CPU).
        tokens: Tokens processed by the whole job, for the time prediction (needs ``gpu``).
        gpu: GPU for the time prediction (default: the spec's hardware GPU).
        calibration: A ``lorabench calibrate`` file for the time engine.
        loaded: The config file ``spec`` came from, for the record's ``config_source`` and ``ignored_keys``.

    Raises:
        ModelError: Unknown model or target module.
        CatalogError: Unknown GPU.
        ConfigError: Invalid tokens or calibration file.
    """
    resolved = model or resolve_model(spec.model)
    record = estimate_record(spec, account(spec, resolved), loaded)
    if engine != "none":
        record.update(_memory(spec, engine, device, resolved))
    gpu_name = gpu or spec.hardware.gpu
    if tokens is not None:
        if gpu_name is None:
            from lorabench.errors import ConfigError

            raise ConfigError("--tokens: a time prediction needs --gpu NAME")
        record.update(_time(spec, tokens, gpu_name, calibration, resolved))
        _mark_unfit_time(record)
    return record


def _mark_unfit_time(record: dict[str, Any]) -> None:
    """Null the job time when the memory verdict says the run does not fit on the GPU it was predicted for.

    The roofline's figures stay under ``time`` (with ``fits: false``) so nothing is dropped, but
    ``predicted_time_s`` and its band are null: a time for a run that would OOM is not a time.
    """
    from lorabench.errors import CatalogError
    from lorabench.hardware import resolve_gpu

    step = record["time"]["step"]
    try:
        key = resolve_gpu(str(step["gpu"])).key
    except CatalogError:
        key = str(step["gpu"])
    verdict = (record.get("fits") or {}).get(key)
    record["time"]["fits"] = verdict
    if verdict is False:
        record["predicted_time_s"] = None
        record["predicted_time_interval_s"] = None
        record["predicted_time_breakdown_s"] = None
        record["predicted_time_note"] = (
            f"not predicted: the run does not fit on {step['gpus']}x{key} "
            f"(device total {record.get('device_total_bytes')} bytes per GPU); the roofline's figures for it are "
            "under time"
        )
