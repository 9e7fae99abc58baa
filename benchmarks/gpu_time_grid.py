"""GPU step-time grid: measured step time and CUDA kernel time by class for Llama-3.1-8B LoRA (random weights).

    PYTHONPATH=src python benchmarks/gpu_time_grid.py                     # on a CUDA machine, < 8 min on one H200
    PYTHONPATH=src python benchmarks/gpu_time_grid.py --dry-run           # same code path, `tiny` on the CPU
    PYTHONPATH=src python benchmarks/gpu_time_grid.py --plan              # print the pruned grid and stop

The full grid is bits 16 / 8 / 4 (bf16; bitsandbytes LLM.int8; NF4 + double quant) x micro batch 1 / 4 / 16 x
seq 256 / 2048 x gradient checkpointing on / off x targets q,v / all-linear x autocast off / on (144 cells), LoRA
r8; autocast is the HF Trainer's ``bf16: true`` (the forward under ``torch.autocast(bfloat16)``, so the fp32
adapters' matmuls run in bf16), the regime of the published Trainer-based runs. It is pruned to a time budget:
cells are ranked by how many factors they change from the base cell (16-bit, batch 4, seq 2048, checkpointing
on, q,v, no autocast), so every factor is first varied one at a time, and kept while their estimated cost fits
``--budget-s`` (the estimate, FLOPs / (peak x a planning efficiency per bit width), only orders and prunes cells;
it is printed as such and never reported as a result).

Each kept cell runs ``--steps`` training steps (forward, backward, AdamW step) on random token ids without padding,
timed by lorabench's ResourceTracker, then one more step under ``torch.profiler`` whose CUDA kernel times are grouped
by kernel name into matmul, attention, dequant, elementwise, optimizer, communication (and ``other``, listed). Each
cell is written as a lorabench run record (``results/gpu/<date>-<gpu>/<cell>/result.json``, so ``lorabench
calibrate`` and ``lorabench report`` read them) with its kernel classes, and the grid in ``time_grid.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_record import random_weights_record
from gpu_validate import _load_base  # the same random-weights base, cached once per bit width

BITS = (16, 8, 4)
MICRO_BATCHES = (1, 4, 16)
SEQ_LENS = (256, 2048)
CHECKPOINTING = (True, False)
TARGETS = ("q_proj,v_proj", "all-linear")
AUTOCAST = (False, True)
BASE = (16, 4, 2048, True, "q_proj,v_proj", False)
RANK = 8
PLANNING_EFFICIENCY = {16: 0.45, 8: 0.07, 4: 0.25}
"""Assumed MFU per bit width used ONLY to order and prune cells (bitsandbytes int8 is far slower than bf16)."""
CELL_OVERHEAD_S = 4.0
"""Assumed fixed seconds per cell (adapter swap, allocator warm-up, profiler) for planning."""
KERNEL_CLASSES = ("matmul", "attention", "dequant", "elementwise", "optimizer", "communication", "other")

# Kernel-name rules, checked in order (first match wins). CUDA kernel names and, for the CPU dry run, aten ops.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("communication", re.compile(r"nccl|all_?reduce|all_?gather|reduce_?scatter|c10d|gloo", re.I)),
    ("dequant", re.compile(r"quant|kdequant|nf4|fp4|int8vector|dequantize|bnb|bitsandbytes", re.I)),
    ("optimizer", re.compile(r"multi_tensor_apply|adam|_foreach|fused_sgd|optimizer", re.I)),
    ("elementwise", re.compile(r"log_?softmax|cross_?entropy|nll_loss", re.I)),  # the loss, before attention's softmax
    ("attention", re.compile(r"flash|fmha|attention|sdpa|scaled_dot_product|mha_|softmax", re.I)),
    (
        "matmul",
        re.compile(
            r"gemm|gemv|cublas|cutlass|xmma|wgmma|nvjet|ampere_|sm\d+_|turing_|volta_|aten::(mm|addmm|bmm|matmul|linear)\b",
            re.I,
        ),
    ),
    (
        "elementwise",
        re.compile(
            r"elementwise|vectorized|unrolled|reduce|norm|silu|gelu|rope|rotary|embedding|index|gather|scatter|copy|"
            r"fill|cat|mul|add|div|sub|neg|pow|rsqrt|exp|log|nll|cross_entropy|where|masked|arange|cumsum|sum|mean|"
            r"transpose|contiguous|clone|to_copy|dropout|bernoulli|triu|clamp|aten::",
            re.I,
        ),
    ),
)


def kernel_class(name: str) -> str:
    """The class of one CUDA kernel (or aten op) by its name; ``other`` when no rule matches.

    Args:
        name: Kernel name as torch.profiler reports it (e.g. ``ampere_bf16_s16816gemm_...``,
            ``flash_fwd_kernel``, ``kDequantizeBlockwise``, ``multi_tensor_apply_kernel``).

    Returns:
        One of :data:`KERNEL_CLASSES`.
    """
    for label, pattern in _RULES:
        if pattern.search(name):
            return label
    return "other"


def group_kernel_times(times_us: Iterable[tuple[str, float]]) -> dict[str, Any]:
    """Sum kernel times by class.

    Args:
        times_us: (kernel name, self device time in microseconds) pairs.

    Returns:
        ``seconds_by_class`` (every class, 0.0 when absent), ``share_by_class`` (of the total), ``total_s``, and
        ``other_kernels`` (the unmatched names with their seconds, largest first, at most 20) so nothing is
        silently dropped.
    """
    seconds = dict.fromkeys(KERNEL_CLASSES, 0.0)
    other: dict[str, float] = {}
    for name, micros in times_us:
        label = kernel_class(name)
        seconds[label] += micros / 1e6
        if label == "other":
            other[name] = other.get(name, 0.0) + micros / 1e6
    total = sum(seconds.values())
    return {
        "seconds_by_class": seconds,
        "share_by_class": {k: (v / total if total else 0.0) for k, v in seconds.items()},
        "total_s": total,
        "other_kernels": dict(sorted(other.items(), key=lambda kv: -kv[1])[:20]),
    }


@dataclasses.dataclass(frozen=True)
class Cell:
    """One grid cell."""

    bits: int
    micro_batch: int
    seq_len: int
    grad_ckpt: bool
    targets: str
    autocast: bool = False

    @property
    def name(self) -> str:
        """Folder name, e.g. ``b16-mb4-s2048-ckpt-qv`` (``-ac`` appended under autocast)."""
        targets = "qv" if self.targets == "q_proj,v_proj" else "all"
        ckpt = "ckpt" if self.grad_ckpt else "nockpt"
        return f"b{self.bits}-mb{self.micro_batch}-s{self.seq_len}-{ckpt}-{targets}{'-ac' if self.autocast else ''}"

    def distance(self) -> int:
        """How many factors differ from the base cell (bits are compared only when both are 16-bit)."""
        own = (self.micro_batch, self.seq_len, self.grad_ckpt, self.targets, self.autocast)
        return sum(a != b for a, b in zip(own, BASE[1:], strict=True))


def full_grid() -> list[Cell]:
    """All 144 cells."""
    return [
        Cell(*values) for values in itertools.product(BITS, MICRO_BATCHES, SEQ_LENS, CHECKPOINTING, TARGETS, AUTOCAST)
    ]


def plan(cells: Sequence[Cell], cost_s: Callable[[Cell], float], budget_s: float) -> list[Cell]:
    """Prune cells to a time budget, most informative first, then order them for running.

    Cells are ranked by :meth:`Cell.distance` (base first, then one factor changed, ...), 16-bit before 4-bit before
    8-bit at equal distance, cheaper first; kept while the summed estimate fits ``budget_s``. The kept cells run
    grouped by bits, targets and checkpointing (fewest model reloads and adapter swaps).

    Args:
        cells: Candidate cells.
        cost_s: Estimated seconds of one cell.
        budget_s: Seconds the kept cells may take together.

    Returns:
        The kept cells in running order.
    """
    bit_rank = {16: 0, 4: 1, 8: 2}
    ranked = sorted(cells, key=lambda c: (c.distance(), bit_rank.get(c.bits, 9), cost_s(c)))
    kept: list[Cell] = []
    spent = 0.0
    for cell in ranked:
        cost = cost_s(cell)
        if spent + cost <= budget_s:
            kept.append(cell)
            spent += cost
    return sorted(kept, key=lambda c: (BITS.index(c.bits), c.targets, not c.grad_ckpt, c.seq_len, c.micro_batch))


def planning_cost(flops_per_token: Callable[[Cell], float], peak_flops: float, steps: int) -> Callable[[Cell], float]:
    """Estimated seconds of a cell: ``(steps + 1) x tokens x FLOPs/token / (peak x PLANNING_EFFICIENCY) + overhead``."""

    def cost(cell: Cell) -> float:
        tokens = cell.micro_batch * cell.seq_len
        return (steps + 1) * tokens * flops_per_token(cell) / (
            peak_flops * PLANNING_EFFICIENCY[cell.bits]
        ) + CELL_OVERHEAD_S

    return cost


def gpu_slug(name: str) -> str:
    """Folder-safe GPU name: ``NVIDIA H200`` -> ``h200``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().removeprefix("nvidia").strip()).strip("-")
    return slug or "gpu"


def _spec(model: str, cell: Cell, gpu: str) -> Any:
    from lorabench.spec import parse_spec

    return parse_spec(
        {
            "model": model,
            "method": "lora",
            "bits": cell.bits,
            "rank": RANK,
            "targets": cell.targets,
            "micro_batch": cell.micro_batch,
            "seq_len": cell.seq_len,
            "grad_ckpt": cell.grad_ckpt,
            "autocast": cell.autocast,
            "hardware": {"gpu": gpu, "count": 1},
        }
    )


def _set_checkpointing(model: Any, on: bool) -> None:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if on:
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        inner.enable_input_require_grads()
    else:
        inner.gradient_checkpointing_disable()


def _profile_step(step: Callable[[], None], cuda: bool) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        step()
        if cuda:
            torch.cuda.synchronize()
    pairs: list[tuple[str, float]] = []
    for event in prof.key_averages():
        if cuda:
            if str(event.device_type).endswith("CUDA") and event.self_device_time_total > 0:
                pairs.append((event.key, float(event.self_device_time_total)))
        elif "::" in event.key and event.self_cpu_time_total > 0:  # aten::, bitsandbytes:: ops
            pairs.append((event.key, float(event.self_cpu_time_total)))
    grouped = group_kernel_times(pairs)
    grouped["timing"] = "CUDA kernel self time" if cuda else "CPU self time of namespaced ops (dry run)"
    return grouped


def _run_cell(model: Any, spec: Any, steps: int, device: torch.device, vocab: int) -> dict[str, Any]:
    from lorabench.measure.trackers import ResourceTracker

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    generator = torch.Generator(device="cpu").manual_seed(0)
    tokens = spec.micro_batch * spec.seq_len

    def step() -> None:
        ids = torch.randint(4, vocab, (spec.micro_batch, spec.seq_len), generator=generator).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.autocast):  # as lorabench run does
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    tracker = ResourceTracker(warmup_steps=1, devices=[device.index or 0] if device.type == "cuda" else None)
    status, message, kernels = "ok", None, None
    tracker.start()
    try:
        for _ in range(steps):
            tracker.step_begin()
            step()
            tracker.step_end(padded_tokens=tokens, nonpad_tokens=tokens, samples=spec.micro_batch)
    except torch.OutOfMemoryError as exc:
        status, message = "oom", f"OutOfMemoryError: {exc}"[:1000]
        optimizer.zero_grad(set_to_none=True)
        tracker.step_end(padded_tokens=0, nonpad_tokens=0, samples=0)
    metrics = tracker.stop()
    if status == "ok":
        try:
            kernels = _profile_step(step, device.type == "cuda")
        except torch.OutOfMemoryError as exc:
            message = f"profiled step: OutOfMemoryError: {exc}"[:1000]
    optimizer.state.clear()  # free the AdamW moments before the next cell
    params.clear()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"status": status, "message": message, "metrics": metrics, "kernel_classes": kernels}


def _flops_per_token_fn(model: str) -> Callable[[Cell], float]:
    from lorabench.predict.time.flops import training_flops

    cache: dict[tuple[str, bool, int], float] = {}

    def per_token(cell: Cell) -> float:
        key = (cell.targets, cell.grad_ckpt, cell.seq_len)
        if key not in cache:
            cache[key] = float(training_flops(_spec(model, cell, "H200")).total_per_token)
        return cache[key]

    return per_token


def main(argv: list[str] | None = None) -> int:
    """Run the pruned grid (or print the plan) and write the records."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="default results/gpu/<date>-<gpu>")
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per cell (the first is warm-up)")
    parser.add_argument("--budget-s", type=float, default=170.0, help="estimated seconds of stepping to keep")
    parser.add_argument(
        "--max-wall-s", type=float, default=420.0, help="start no new cell (or base model) after this many seconds"
    )
    parser.add_argument("--bits", type=int, nargs="+", choices=BITS, default=list(BITS), help="bit widths to run")
    parser.add_argument("--plan", action="store_true", help="print the pruned grid and exit")
    parser.add_argument("--dry-run", action="store_true", help="`tiny` on the CPU, to test this script anywhere")
    args = parser.parse_args(argv)

    from peft import get_peft_model

    from lorabench.hardware import resolve_gpu
    from lorabench.measure.aggregate import combine_ranks_metrics
    from lorabench.measure.environment import describe_environment
    from lorabench.measure.record import write_run_record
    from lorabench.methods import lora_config
    from lorabench.models import resolve_model

    if args.dry_run:
        args.model, device, gpu_name = "tiny", torch.device("cpu"), "cpu (dry run)"
    elif not torch.cuda.is_available() and not args.plan:
        print("no CUDA device; use --dry-run to test the script on the CPU", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
        gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "H200 (plan only)"
    from lorabench.errors import CatalogError

    if args.dry_run:
        peak = 1e11  # a rough CPU figure: the dry run only exercises the code path
    else:
        try:
            peak = resolve_gpu(gpu_name.removesuffix(" (plan only)")).bf16_dense_tflops * 1e12
        except CatalogError:  # an uncatalogued GPU plans with the H200's peak
            peak = resolve_gpu("H200").bf16_dense_tflops * 1e12
    cost = planning_cost(_flops_per_token_fn(args.model), peak, args.steps)
    cells = plan([c for c in full_grid() if c.bits in args.bits], cost, args.budget_s)
    estimate = sum(cost(c) for c in cells)
    print(
        f"plan: {len(cells)} of {len(full_grid())} cells, estimated {estimate:.0f}s of stepping "
        "(planning estimate, not a result)"
    )
    for cell in cells:
        print(f"  {cell.name:28} est {cost(cell):6.1f}s  distance {cell.distance()}")
    if args.plan:
        return 0
    out = args.out or Path("results") / "gpu" / f"{dt.date.today().isoformat()}-{gpu_slug(gpu_name)}"
    started = time.perf_counter()
    model_ref = resolve_model(args.model)
    vocab = int(model_ref.config.vocab_size)
    env = describe_environment(device)
    cache = Path(tempfile.mkdtemp(prefix="lorabench-time-grid-"))
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    try:
        for bits, group in itertools.groupby(cells, key=lambda c: c.bits):
            if time.perf_counter() - started > args.max_wall_s:
                skipped += [c.name for c in group]
                continue
            t0 = time.perf_counter()
            base = _load_base(model_ref, bits, device, cache)
            if bits < 16:
                from peft import prepare_model_for_kbit_training

                base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
            print(f"[{time.perf_counter() - started:6.1f}s] {bits}-bit base ready ({time.perf_counter() - t0:.1f}s)")
            model, current_targets = base, None
            for cell in group:
                if time.perf_counter() - started > args.max_wall_s:
                    skipped.append(cell.name)
                    continue
                spec = _spec(args.model, cell, gpu_name)
                if cell.targets != current_targets:
                    if current_targets is not None:
                        base = model.unload()
                    model = get_peft_model(base, lora_config(spec))
                    current_targets = cell.targets
                _set_checkpointing(model, cell.grad_ckpt)
                result = _run_cell(model, spec, args.steps, device, vocab)
                metrics = combine_ranks_metrics([result["metrics"]], None)
                counted = (metrics.get("step_times_s") or [])[1:]
                median = sorted(counted)[len(counted) // 2] if counted else None
                record = random_weights_record(
                    result,
                    metrics,
                    spec,
                    model_ref,
                    env,
                    script="benchmarks/gpu_time_grid.py",
                    steps=args.steps,
                    warmup_steps=1,
                    trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                    kernel_classes=result["kernel_classes"],
                )
                write_run_record(out / cell.name, record)
                rows.append(
                    {
                        **dataclasses.asdict(cell),
                        "name": cell.name,
                        "status": result["status"],
                        "median_step_s": median,
                        "tokens_per_step": cell.micro_batch * cell.seq_len,
                        "peak_allocated_bytes": metrics.get("peak_allocated_bytes"),
                        "kernel_seconds_by_class": (result["kernel_classes"] or {}).get("seconds_by_class"),
                        "planning_estimate_s": cost(cell),
                    }
                )
                shown = "n/a" if median is None else f"{median:.3f}s"
                print(f"[{time.perf_counter() - started:6.1f}s] {cell.name}: {result['status']} median step {shown}")
            del model, base
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    summary = {
        "schema": "lorabench.gpu_time_grid",
        "schema_version": 1,
        "gpu": gpu_name,
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_ref.display_name,
        "weights": "random, built from the config",
        "rank": RANK,
        "optimizer": "torch.optim.AdamW",
        "kernel_classes": list(KERNEL_CLASSES),
        "planning": {
            "efficiency_by_bits": PLANNING_EFFICIENCY,
            "budget_s": args.budget_s,
            "max_wall_s": args.max_wall_s,
            "cells": len(cells),
            "skipped_for_wall_time": skipped,
        },
        "environment": env,
        "elapsed_s": time.perf_counter() - started,
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "time_grid.json").write_text(json.dumps(summary, indent=2))
    if skipped:
        print(f"skipped for wall time: {', '.join(skipped)}")
    print(f"done in {summary['elapsed_s']:.0f}s -> {out}/time_grid.json")
    return 0


def summarise_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per row: cell, status, tokens/s and the largest kernel class (for reading time_grid.json)."""
    lines = []
    for row in rows:
        step = row.get("median_step_s")
        rate = f"{row['tokens_per_step'] / step:,.0f} tok/s" if step else "n/a"
        classes = row.get("kernel_seconds_by_class") or {}
        top = max(classes, key=lambda k: classes[k]) if classes else "n/a"
        lines.append(f"{row['name']:28} {row['status']:6} {rate:>14}  largest: {top}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
