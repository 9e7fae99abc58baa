"""Tracker overhead: step time with every tracker on vs wall clock only, same spec, runs interleaved.

    python benchmarks/tracker_overhead.py [REPEATS]

On CPU the "on" side includes the PyTorch profiler that counts allocator events (lorabench's independent CPU
tensor-memory counter, ``cpu.profiler_peak_new_shapes``: set-up and the first 2 steps of each batch shape are
profiled, later shape-identical steps are not); on CUDA it is the allocator's own counters plus an NVML poller.
"""

from __future__ import annotations

import statistics
import sys
import time

from _common import run

SPEC = {"model": "tiny", "seq_len": 128, "micro_batch": 4}
OPTS = {"max_steps": 12, "warmup_steps": 2, "examples": 128}


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    on_step, off_rate = [], []
    on_rate = []
    for _ in range(repeats):  # interleave so drift on this noisy machine hits both sides alike
        for enabled in (True, False):
            started = time.perf_counter()
            record = run(SPEC, trackers=enabled, **OPTS)
            elapsed = time.perf_counter() - started
            tokens = record["metrics"]["padded_tokens"]
            (on_rate if enabled else off_rate).append(tokens / elapsed)
            if enabled:
                on_step.append(statistics.median(record["metrics"]["step_times_s"][2:]))
    on, off = statistics.median(on_rate), statistics.median(off_rate)
    print(f"spec: {SPEC}, {OPTS['max_steps']} steps x {repeats} repeats, device: {record['metrics']['device']}")
    print(f"padded tokens/s over the whole run (incl. model build): trackers on {on:,.0f}, off {off:,.0f}")
    print(f"overhead: {100 * (off / on - 1):.1f}% (target <= 1%)")
    print(f"median counted step with trackers on: {1000 * statistics.median(on_step):.1f} ms")


if __name__ == "__main__":
    main()
