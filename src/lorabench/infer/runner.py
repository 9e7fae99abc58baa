"""Run an inference benchmark: every selected variant over the grid of batch sizes and prompt lengths.

Per cell: ``warmup`` untimed generations, then ``repeats`` timed ones (see :mod:`lorabench.infer.timing`) inside a
:class:`~lorabench.measure.trackers.ResourceTracker`, the same trackers as training. On CUDA the tracker runs its
memory and energy counters over the timed repeats (allocator peaks, NVML used and energy). On CPU its tensor-memory
counter is the PyTorch profiler, which slows every operator, so the timed repeats run with the wall clock only and
one extra untimed generation measures memory. Bad input (options, model, adapter, prompts, context) fails before
any model is loaded or any record written; a cell that runs out of memory or fails is recorded as such.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lorabench import interrupts
from lorabench.errors import Interrupted, MeasurementError, signal_name
from lorabench.infer.adapters import AdapterInfo, check_adapter_fits, describe_adapter
from lorabench.infer.cost import COST_METHOD, cost_per_mtok, serving_rate
from lorabench.infer.multi import draw_requests, load_adapters, popularity_weights, unload_adapters
from lorabench.infer.options import InferOptions, check_context, check_options
from lorabench.infer.prompts import PromptSource, make_prompts, prompt_source
from lorabench.infer.record import SLOWDOWN_METHOD, slowdowns, summary_row, write_infer_record
from lorabench.infer.stats import PERCENTILE_METHOD, summarize
from lorabench.infer.timing import LOOP, GenerationTiming, clock_description, timed_generate
from lorabench.infer.variants import (
    MERGE_QUANT_SKIPPED,
    attach_adapter,
    avoid_bnb_cpu_packing,
    load_base,
    merge,
    release_memory,
    weight_bytes,
)
from lorabench.measure.environment import describe_environment
from lorabench.measure.trackers import ResourceTracker
from lorabench.models import ResolvedModel, resolve_model
from lorabench.models.load import BUILT_IN_RANDOM

__all__ = ["Prepared", "prepare", "run_inference"]

Progress = Callable[[str], None]
_MEMORY_NAMES = ("peak_allocated_bytes", "peak_reserved_bytes", "nvml_peak_used_bytes", "peak_rss_bytes")
_CPU_MEMORY_PASS = (
    "one extra untimed generation of the same cell with the trackers on (the CPU tensor-memory counter is the "
    "PyTorch profiler, which would slow the timed repeats); counts memory allocated during generation (activations, "
    "KV cache, logits), not the weights loaded before it: see model_weight_bytes"
)
CPU_THREADS_NOTE = (
    "torch threads on CPU: 1 unless --cpu-threads says otherwise; several threads that wait on each other make a "
    "shared or small CPU's timings swing by orders of magnitude"
)
_CUDA_MEMORY_PASS = "the timed repeats (allocator peaks restart from live memory, so the weights are included)"


@dataclass(frozen=True)
class Prepared:
    """Validated inputs of a benchmark: options, model, adapters, prompt source and device."""

    options: InferOptions
    model: ResolvedModel
    adapters: tuple[AdapterInfo, ...]
    prompts: PromptSource
    device: torch.device


def prepare(options: InferOptions) -> Prepared:
    """Check every input before anything is loaded or written.

    Raises:
        ConfigError, ModelError, DataError: A bad flag, model, adapter (e.g. trained for another architecture),
            dataset, or a prompt that does not fit the context.
    """
    check_options(options)
    model = resolve_model(options.model)
    context = getattr(model.config, "max_position_embeddings", None)
    check_context(options.prompt_lens, options.max_new_tokens, context, model.display_name)
    adapters = tuple(describe_adapter(path) for path in options.adapters)
    for adapter in adapters:
        check_adapter_fits(adapter, model.config, model.display_name)
    source = prompt_source(options.prompts, model)
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    return Prepared(options, model, adapters, source, device)


@dataclass
class _Context:
    prepared: Prepared
    environment: dict[str, Any]
    rate: dict[str, Any]
    progress: Progress
    records: list[tuple[dict[str, Any], Path]]
    order: str = "sequential"


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


def _kwargs_for(names: Sequence[str] | None, weights: Sequence[float], batch: int, rng: random.Random) -> Any:
    if names is None:
        return None
    return {"adapter_names": draw_requests(names, weights, batch, rng)}


def _memory_pass(model: Any, ids: torch.Tensor, new: int, extra: dict[str, Any] | None) -> dict[str, Any]:
    tracker = ResourceTracker(trackers_enabled=True)
    try:
        tracker.start()
    except MeasurementError as exc:
        return {"error": str(exc)}
    try:
        tracker.step_begin()
        timing = timed_generate(model, ids, new, extra)
        tracker.step_end(padded_tokens=timing.output_tokens, nonpad_tokens=timing.output_tokens, samples=len(ids))
    finally:
        metrics = tracker.stop() if tracker.metrics is None else tracker.metrics
    return metrics


def _measure(ctx: _Context, model: Any, batch: int, prompt_len: int, multi: dict[str, Any] | None) -> dict[str, Any]:
    """Warm-up, timed repeats and memory of one cell; returns the record's ``metrics`` (and multi draws)."""
    prepared = ctx.prepared
    options, device = prepared.options, prepared.device
    new = options.max_new_tokens
    ids = make_prompts(prepared.prompts, batch, prompt_len, options.seed).to(device)
    rng = random.Random(f"{options.seed}-{batch}-{prompt_len}")
    names = multi["names"] if multi else None
    weights = multi["weights"] if multi else []
    draws: dict[str, int] = {}
    for _ in range(options.warmup):
        interrupts.check()
        timed_generate(model, ids, new, _kwargs_for(names, weights, batch, rng))
    cuda = device.type == "cuda"
    tracker = ResourceTracker(trackers_enabled=cuda, devices=[device.index or 0] if cuda else None)
    timings: list[GenerationTiming] = []
    tracker.start()
    try:
        for _ in range(options.repeats):
            interrupts.check()  # between generations: the profiler and native code never see the signal
            extra = _kwargs_for(names, weights, batch, rng)
            for name in (extra or {}).get("adapter_names", []):
                draws[name] = draws.get(name, 0) + 1
            tracker.step_begin()
            timing = timed_generate(model, ids, new, extra)
            tracker.step_end(padded_tokens=timing.output_tokens, nonpad_tokens=timing.output_tokens, samples=batch)
            timings.append(timing)
    finally:
        tracked = tracker.stop() if tracker.metrics is None else tracker.metrics
    memory = tracked if cuda else _memory_pass(model, ids, new, _kwargs_for(names, weights, batch, rng))
    return _metrics(timings, tracked, memory, batch, prompt_len, model, device) | {"_draws": draws}


VARIANT_ORDER_NOTE = (
    "sequential: variants are measured one after another (base, unmerged, multi, merged, then the quantized base), "
    "so a drift of the machine between them lands on their comparison: on an H200 this order showed merged 17-62% "
    "slower than base, while base, a copy of it and merged timed interleaved agreed within 1.2% "
    "(benchmarks/gpu_merged_vs_base.py)"
)
INTERLEAVED_NOTE = (
    "interleaved: base, unmerged and merged are resident together (the adapter variants on copies of the base) and "
    "measured cell by cell, the variant order rotating from cell to cell, so a drift of the machine is shared by "
    "the variants; multi and the quantized variants follow one after another. Peak allocated is corrected to one "
    "variant alone: the other variants' weight bytes are subtracted; reserved, NVML used and RSS are then "
    "process-wide and left unknown"
)


def _metrics(
    timings: Sequence[GenerationTiming],
    tracked: dict[str, Any],
    memory: dict[str, Any],
    batch: int,
    prompt_len: int,
    model: Any,
    device: torch.device,
) -> dict[str, Any]:
    clock = clock_description(device)
    e2e = [t.e2e_s for t in timings]
    ttft = [t.ttft_s for t in timings]
    tpot = [t.time_per_output_token_s for t in timings if t.time_per_output_token_s is not None]
    output_tokens = sum(t.output_tokens for t in timings)
    timed_s = sum(e2e)
    energy = tracked.get("energy_j")
    counters = {k: v for k, v in (memory.get("counters") or {}).items() if k in _MEMORY_NAMES and v}
    unavailable = {k: v for k, v in (memory.get("unavailable") or {}).items() if k in _MEMORY_NAMES}
    if "error" in memory:
        unavailable.update({name: f"memory not measured: {memory['error']}" for name in _MEMORY_NAMES})
    metrics: dict[str, Any] = {
        "ttft_s": summarize(ttft),
        "time_per_output_token_s": summarize(tpot),
        "e2e_latency_s": summarize(e2e),
        "output_tokens": output_tokens,
        "timed_s": timed_s,
        "output_tokens_per_s": output_tokens / timed_s if timed_s > 0 else None,
        "requests_per_s": batch * len(timings) / timed_s if timed_s > 0 else None,
        "prefill_tokens_per_s": batch * prompt_len * len(ttft) / sum(ttft) if sum(ttft) > 0 else None,
        "repeat_samples_s": {"ttft_s": ttft, "decode_s": [t.decode_s for t in timings], "e2e_latency_s": e2e},
        "tracker_wall_time_s": tracked.get("wall_time_s"),
        "model_weight_bytes": weight_bytes(model),
        "memory_measured_over": _CUDA_MEMORY_PASS if device.type == "cuda" else _CPU_MEMORY_PASS,
    }
    for name in _MEMORY_NAMES:
        metrics[name] = memory.get(name)
    metrics["energy_j"] = energy
    metrics["energy_method"] = tracked.get("energy_method")
    metrics["energy_per_output_token_j"] = energy / output_tokens if energy is not None and output_tokens else None
    counters.update(
        {
            "ttft_s": clock,
            "time_per_output_token_s": f"{clock}; decode time / (max_new_tokens - 1)",
            "e2e_latency_s": clock,
            "output_tokens_per_s": f"output tokens of the timed repeats / their summed e2e latency ({clock})",
            "requests_per_s": "requests of the timed repeats / their summed e2e latency",
            "prefill_tokens_per_s": "prompt tokens / summed time to first token",
            "tracker_wall_time_s": (tracked.get("counters") or {}).get("wall_time_s"),
            "model_weight_bytes": "sum of parameter and buffer nbytes as stored",
            "energy_j": (tracked.get("counters") or {}).get("energy_j") or tracked.get("energy_method"),
            "energy_per_output_token_j": "energy_j / output_tokens (timed repeats)",
        }
    )
    if energy is None:
        reason = "no GPU on the cpu path: energy unknown" if device.type != "cuda" else None
        unavailable["energy_j"] = reason or (tracked.get("unavailable") or {}).get("energy_j") or "no energy counter"
        unavailable["energy_per_output_token_j"] = "energy unknown"
    if not tpot:
        unavailable["time_per_output_token_s"] = "max_new_tokens is 1: no decode step"
    metrics["counters"] = {k: v for k, v in counters.items() if v}
    metrics["unavailable"] = {k: v for k, v in unavailable.items() if metrics.get(k) is None}
    return metrics


def _record(
    ctx: _Context,
    variant: str,
    detail: dict[str, Any],
    batch: int,
    prompt_len: int,
    metrics: dict[str, Any] | None,
    status: str,
    message: str | None,
    multi: dict[str, Any] | None,
) -> dict[str, Any]:
    prepared = ctx.prepared
    options, model = prepared.options, prepared.model
    uses_adapter = variant != "base" and variant != "base-quant"
    tps = metrics.get("output_tokens_per_s") if metrics else None
    draws = metrics.pop("_draws", {}) if metrics else {}
    return {
        "status": status,
        "message": message,
        "model": {
            "key": model.key,
            "display_name": model.display_name,
            "config_source": model.source,
            "max_position_embeddings": getattr(model.config, "max_position_embeddings", None),
            "weights": "random (built from the config)" if detail.get("random_weights") else "loaded",
        },
        "variant": variant,
        "variant_detail": {k: v for k, v in detail.items() if k != "random_weights"},
        "adapter": prepared.adapters[0].record() if uses_adapter and prepared.adapters else None,
        "multi_adapter": None
        if multi is None
        else {k: v for k, v in multi.items() if k != "weights"}
        | {
            "request_draws": draws,
        },
        "cell": {"batch_size": batch, "prompt_len": prompt_len, "max_new_tokens": options.max_new_tokens},
        "prompts": {"source": options.prompts, "description": prepared.prompts.description},
        "protocol": {
            "warmup_runs": options.warmup,
            "warmup_note": "warm-up runs are excluded from every figure",
            "repeats": options.repeats,
            "loop": LOOP,
            "decoding": "greedy (argmax); EOS ignored: exactly max_new_tokens per request",
            "clock": clock_description(prepared.device),
            "percentiles": PERCENTILE_METHOD,
            "tokens_counted": "output tokens only (batch x max_new_tokens per run); prompts have exact lengths, "
            "no padding",
            "seed": options.seed,
            "cpu_threads": None if prepared.device.type == "cuda" else torch.get_num_threads(),
            "cpu_threads_note": CPU_THREADS_NOTE,
            "variant_order": ctx.order,
        },
        "device": prepared.device.type,
        "metrics": metrics,
        "cost": {
            "usd_per_gpu_hour": ctx.rate["usd_per_gpu_hour"],
            "cost_per_1m_output_tokens_usd": cost_per_mtok(ctx.rate["usd_per_gpu_hour"], tps),
            "method": COST_METHOD,
            "provenance": ctx.rate["provenance"],
        },
        "environment": ctx.environment,
    }


def _alone(metrics: dict[str, Any], others_bytes: int) -> dict[str, Any]:
    """Correct a cell's memory to its variant alone when other variants' weights were resident beside it."""
    counters, unavailable = metrics.setdefault("counters", {}), metrics.setdefault("unavailable", {})
    if metrics.get("peak_allocated_bytes") is not None and metrics.get("memory_measured_over") == _CUDA_MEMORY_PASS:
        metrics["peak_allocated_bytes"] = max(0, metrics["peak_allocated_bytes"] - others_bytes)
        counters["peak_allocated_bytes"] = (
            f"{counters.get('peak_allocated_bytes', 'torch.cuda.max_memory_allocated')} minus the "
            f"{others_bytes:,} weight bytes of the other variants resident beside it (interleaved order)"
        )
    for name in ("peak_reserved_bytes", "nvml_peak_used_bytes", "peak_rss_bytes"):
        if metrics.get(name) is not None:
            metrics[name] = None
            counters.pop(name, None)
            unavailable[name] = "process-wide while other variants were resident (interleaved order)"
    return metrics


def _cell(
    ctx: _Context,
    variant: str,
    model: Any,
    detail: dict[str, Any],
    multi: dict[str, Any] | None,
    batch: int,
    prompt_len: int,
    others_bytes: int | None = None,
) -> None:
    ctx.progress(f"{variant}: batch {batch}, prompt {prompt_len}")
    status, message, metrics = "ok", None, None
    stopped: Interrupted | None = None
    try:
        interrupts.check()
        metrics = _measure(ctx, model, batch, prompt_len, multi)
        if others_bytes is not None:
            metrics = _alone(metrics, others_bytes)
    except Interrupted as exc:  # the cell is recorded as interrupted, then the run stops
        stopped = exc
        status, message = "interrupted", f"interrupted by {signal_name(exc.signum)}"
    except Exception as exc:  # a cell that dies is a result, recorded with its message
        status = "oom" if _is_oom(exc) else "failed"
        message = f"{type(exc).__name__}: {exc}".strip()[:2000]
        release_memory()
    record = _record(ctx, variant, detail, batch, prompt_len, metrics, status, message, multi)
    ctx.records.append((record, write_infer_record(ctx.prepared.options.out, record)))
    if stopped is not None:
        done = sum(1 for r, _ in ctx.records if r.get("status") != "interrupted")
        raise Interrupted(
            stopped.signum,
            f"inference interrupted by {signal_name(stopped.signum)} after {done} cell(s); records (the stopped cell "
            f"as interrupted) in {ctx.prepared.options.out}",
        )


def _grid(ctx: _Context, variant: str, model: Any, detail: dict[str, Any], multi: dict[str, Any] | None) -> None:
    options = ctx.prepared.options
    for batch in options.batch_sizes:
        for prompt_len in options.prompt_lens:
            _cell(ctx, variant, model, detail, multi, batch, prompt_len)


def _free_bytes(device: torch.device) -> int | None:
    """Memory free for more weights: CUDA's free memory, or MemAvailable of /proc/meminfo on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _interleave(ctx: _Context, selected: Sequence[str], base: Any) -> bool:
    """Whether to hold base, unmerged and merged together (``--order``; ``auto``: when two more copies fit)."""
    order = ctx.prepared.options.order
    wanted = [v for v in ("base", "unmerged", "merged") if v in selected]
    if order == "sequential" or len(wanted) < 2 or not ctx.prepared.adapters:
        return False
    if order == "interleaved":
        return True
    free = _free_bytes(ctx.prepared.device)
    copies = len(wanted) - 1
    return free is not None and copies * weight_bytes(base) <= 0.7 * free


def _bf16_interleaved(ctx: _Context, selected: Sequence[str], base: Any) -> Any:
    """Measure base, unmerged and merged cell by cell in rotating order; returns the unmerged model (for multi)."""
    import copy

    prepared = ctx.prepared
    options = prepared.options
    adapter = prepared.adapters[0].path
    unmerged = attach_adapter(copy.deepcopy(base), adapter) if {"unmerged", "multi"} & set(selected) else None
    merged = merge(attach_adapter(copy.deepcopy(base), adapter)) if "merged" in selected else None
    held = {"base": base, "unmerged": unmerged, "merged": merged}  # everything resident, measured or not
    states = {
        "base": "none (plain base)",
        "unmerged": "unmerged (PEFT LoRA layers beside the base weights)",
        "merged": "merged into the bf16 weights (merge_and_unload)",
    }
    names = [v for v in ("base", "unmerged", "merged") if v in selected]
    models = {v: (held[v], _detail(ctx, 16, states[v], held[v])) for v in names}
    resident = sum(weight_bytes(m) for m in held.values() if m is not None)
    cells = [(b, p) for b in options.batch_sizes for p in options.prompt_lens]
    for index, (batch, prompt_len) in enumerate(cells):
        shift = index % len(names)
        for variant in names[shift:] + names[:shift]:
            model, detail = models[variant]
            _cell(ctx, variant, model, detail, None, batch, prompt_len, resident - weight_bytes(model))
    return unmerged


def _detail(ctx: _Context, bits: int, state: str, model: Any) -> dict[str, Any]:
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    return {
        "bits": bits,
        "storage": {16: "bf16", 8: "bitsandbytes LLM.int8", 4: "bitsandbytes NF4 + double quant, bf16 compute"}[bits],
        "compute_dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
        "adapter_state": state,
        "random_weights": ctx.prepared.options.random_weights or ctx.prepared.model.key in BUILT_IN_RANDOM,
    }


def _bf16_variants(ctx: _Context, selected: Sequence[str]) -> None:
    prepared = ctx.prepared
    options = prepared.options
    base = load_base(prepared.model, 16, prepared.device, options.random_weights, options.seed)
    if _interleave(ctx, selected, base):
        ctx.order = INTERLEAVED_NOTE
        peft = _bf16_interleaved(ctx, selected, base)
        del base
        if "multi" in selected and peft is not None:
            _multi(ctx, peft)
        return
    ctx.order = VARIANT_ORDER_NOTE
    if "base" in selected:
        _grid(ctx, "base", base, _detail(ctx, 16, "none (plain base)", base), None)
    if not set(selected) & {"unmerged", "multi", "merged"}:
        return
    peft = attach_adapter(base, prepared.adapters[0].path)
    if "unmerged" in selected:
        state = "unmerged (PEFT LoRA layers beside the base weights)"
        _grid(ctx, "unmerged", peft, _detail(ctx, 16, state, peft), None)
    if "multi" in selected:
        _multi(ctx, peft)
    if "merged" in selected:
        merged = merge(peft)
        _grid(ctx, "merged", merged, _detail(ctx, 16, "merged into the bf16 weights (merge_and_unload)", merged), None)


def _multi(ctx: _Context, peft: Any) -> None:
    """The multi-adapter variant: N adapters loaded beside the first, requests drawn by popularity."""
    prepared = ctx.prepared
    options = prepared.options
    names = load_adapters(peft, [a.path for a in prepared.adapters], options.multi_adapters)
    weights = popularity_weights(len(names), options.popularity, options.zipf_s)
    multi = {
        "adapters": len(names),
        "names": names,
        "sources": [str(prepared.adapters[i % len(prepared.adapters)].path) for i in range(len(names))],
        "popularity": options.popularity if options.popularity == "uniform" else f"zipf:{options.zipf_s:g}",
        "weights": weights,
        "probabilities": weights,
        "how": "PEFT multi-adapter: per-request adapter_names (mixed batches), drawn per repeat (seeded)",
    }
    _grid(ctx, "multi", peft, _detail(ctx, 16, f"{len(names)} adapters unmerged, mixed batches", peft), multi)
    unload_adapters(peft, names)


def _quant_variants(ctx: _Context, selected: Sequence[str]) -> None:
    prepared = ctx.prepared
    ctx.order = VARIANT_ORDER_NOTE
    options = prepared.options
    base = load_base(prepared.model, options.bits, prepared.device, options.random_weights, options.seed)
    note = avoid_bnb_cpu_packing(base) if prepared.device.type == "cpu" else None
    if "base-quant" in selected:
        detail = _detail(ctx, options.bits, "none (plain quantized base)", base) | {"note": note}
        _grid(ctx, "base-quant", base, detail, None)
    if "unmerged-quant" in selected:
        peft = attach_adapter(base, prepared.adapters[0].path)
        state = "unmerged on the quantized base (how QLoRA adapters are served)"
        _grid(ctx, "unmerged-quant", peft, _detail(ctx, options.bits, state, peft) | {"note": note}, None)


def run_inference(options: InferOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Measure every selected variant over the grid and write one record per cell into ``options.out``.

    Args:
        options: The benchmark.
        progress: Called with a short line before each cell.

    Returns:
        A summary: ``rows`` (one flat row per cell), ``slowdown`` (% against the base, see ``slowdown_method``),
        ``skipped`` variants with the reason, ``records`` written, ``device``.

    Raises:
        ConfigError, ModelError, DataError: Bad input, before anything is loaded or written.
        Interrupted: SIGINT / SIGTERM / SIGHUP (under :func:`lorabench.interrupts.signals_handled`) stopped it
            between generations; the cell being measured is recorded as ``interrupted``.
    """
    prepared = prepare(options)
    cuda = prepared.device.type == "cuda"
    threads = options.cpu_threads or (None if cuda else 1)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with interrupts.deferred():
            interrupts.check()
            return _run(prepared, options, cuda, progress)
    finally:
        torch.set_num_threads(before)


def _run(prepared: Prepared, options: InferOptions, cuda: bool, progress: Progress | None) -> dict[str, Any]:
    ctx = _Context(
        prepared=prepared,
        environment=describe_environment(prepared.device),
        rate=serving_rate(options.usd_per_gpu_hour, torch.cuda.get_device_name(prepared.device) if cuda else None),
        progress=progress or (lambda _: None),
        records=[],
    )
    selected = options.selected_variants()
    skipped = []
    if options.bits < 16 and prepared.adapters and (options.variants is None or "merged" in options.variants):
        skipped.append({"variant": "merged-quant", "reason": MERGE_QUANT_SKIPPED.format(bits=options.bits)})
    if set(selected) & {"base", "unmerged", "multi", "merged"}:
        _bf16_variants(ctx, selected)
    release_memory()
    if set(selected) & {"base-quant", "unmerged-quant"}:
        _quant_variants(ctx, selected)
    release_memory()
    rows = [summary_row(record, str(path)) for record, path in ctx.records]
    return {
        "out": str(options.out),
        "model": prepared.model.key,
        "device": prepared.device.type,
        "variants": list(selected),
        "skipped": skipped,
        "rows": rows,
        "slowdown": slowdowns(rows),
        "slowdown_method": SLOWDOWN_METHOD,
        "records": [str(path) for _, path in ctx.records],
    }
