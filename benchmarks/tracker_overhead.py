"""Tracker overhead in the steady state: step time with every tracker on vs wall clock only, side by side.

    python benchmarks/tracker_overhead.py [--repeats N] [--steps N]

Runs the same spec with trackers on and off, in pairs (on-off, off-on, on-off, ...), so drift on a shared
machine hits both sides alike. Steps are timed from outside the trackers, identically on both sides: the
interval between consecutive calls of the runner's per-step hook (one whole loop iteration). From each run it
takes the median of its steady-state steps: those after the warm-up and after the CPU memory counter's
profiled steps (``cpu.profiler_peak_new_shapes`` profiles the set-up and the first ``steps_per_shape`` steps
of each batch shape; batches are padded to the sequence length, so there is one shape). The overhead is the
median over the pairs of ``on / off - 1``. The profiled steps' own cost and the whole-run figure (model build
and set-up included) are printed too, so the price of the profiled start stays visible. On CUDA the "on" side
is the allocator's own counters plus an NVML poller.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lorabench.measure.options import RunOptions
from lorabench.measure.runner import run_training
from lorabench.measure.trackers.cpu_memory import NewShapeCpuMemory
from lorabench.spec import parse_spec

SPEC = {"model": "tiny", "seq_len": 128, "micro_batch": 4}
WARMUP = 2


def _timed_run(trackers: bool, steps: int) -> tuple[list[float], dict[str, Any]]:
    """One in-process run; returns the durations of steps 2.. (hook to hook) and the record."""
    marks: list[float] = []

    def hook(step: int, total: int, loss: float, tokens_per_s: float | None) -> None:
        marks.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(out=Path(tmp), trackers=trackers, max_steps=steps, warmup_steps=WARMUP, examples=256)
        record = run_training(parse_spec(SPEC), options, on_step=hook)
    return [b - a for a, b in itertools.pairwise(marks)], record


def main() -> None:
    """Run the pairs and print the steady-state overhead."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="Pairs of runs (default 5).")
    parser.add_argument("--steps", type=int, default=30, help="Optimizer steps per run (default 30).")
    options = parser.parse_args()
    profiled = NewShapeCpuMemory().steps_per_shape  # one batch shape: its first steps are profiled
    first_steady = max(WARMUP, profiled)
    if options.steps <= first_steady + 2:
        parser.error(f"--steps must exceed {first_steady + 2} (warm-up and profiled steps are not steady state)")
    steady: dict[bool, list[float]] = {True: [], False: []}
    start: dict[bool, list[float]] = {True: [], False: []}
    whole: dict[bool, list[float]] = {True: [], False: []}
    device = "n/a"
    for repeat in range(options.repeats):
        for enabled in (True, False) if repeat % 2 == 0 else (False, True):  # on-off, off-on, ...: no order bias
            began = time.perf_counter()
            steps, record = _timed_run(enabled, options.steps)
            whole[enabled].append(time.perf_counter() - began)
            # steps[i] is optimizer step i + 2 (hook to hook); step 1 has no hook-to-hook interval
            steady[enabled].append(statistics.median(steps[first_steady - 1 :]))
            start[enabled].append(sum(steps[: profiled - 1]))
            device = record["metrics"]["device"]
    ratios = [on / off - 1 for on, off in zip(steady[True], steady[False], strict=True)]
    whole_ratios = [on / off - 1 for on, off in zip(whole[True], whole[False], strict=True)]
    ms = 1000.0
    print(f"spec: {SPEC}, {options.steps} steps per run ({WARMUP} warm-up, first {profiled} profiled), ", end="")
    print(f"{options.repeats} pairs, device: {device}")
    print(
        f"steady-state step (median of run medians): trackers on {ms * statistics.median(steady[True]):.1f} ms, "
        f"off {ms * statistics.median(steady[False]):.1f} ms"
    )
    print(
        f"steady-state overhead: median {100 * statistics.median(ratios):+.1f}% "
        f"(pairs: {', '.join(f'{100 * r:+.1f}%' for r in ratios)}; target <= 1%)"
    )
    print(
        f"step(s) 2..{profiled} (profiled when on): on {ms * statistics.median(start[True]):.0f} ms, "
        f"off {ms * statistics.median(start[False]):.0f} ms"
    )
    print(
        f"whole run incl. model build and profiled set-up: on {statistics.median(whole[True]):.2f} s, "
        f"off {statistics.median(whole[False]):.2f} s ({100 * statistics.median(whole_ratios):+.1f}%)"
    )


if __name__ == "__main__":
    main()
