"""Wall time of ``lorabench estimate``, cold (empty facts cache) and warm (cache filled), side by side.

Each measurement is a fresh ``python -m lorabench.cli.main estimate ...`` subprocess (interpreter start-up and
imports included, as a user sees it). *cold* runs with an empty ``LORABENCH_CACHE_DIR`` (the meta model is built,
torch + transformers + PEFT imported); *warm* runs after one untimed priming run filled it. Prints a table of the
median, min and max of ``--repeats`` runs per case.

    PYTHONPATH=src python benchmarks/estimate_speed.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES: dict[str, list[str]] = {
    "formula": ["--model", "llama-3.1-8b", "--engine", "formula"],
    "formula, nearby query": [
        "--model",
        "llama-3.1-8b",
        "--engine",
        "formula",
        "--bits",
        "4",
        "--batch-size",
        "2",
        "--seq-len",
        "1024",
        "--gpu",
        "A5000",
        "--tokens",
        "1000000",
    ],
    "none (accounting only)": ["--model", "llama-3.1-8b", "--engine", "none"],
    "simulate": ["--model", "llama-3.1-8b", "--engine", "simulate"],
}


def _once(args: list[str], cache: Path) -> float:
    env = {**os.environ, "LORABENCH_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "lorabench.cli.main", "estimate", *args, "--json"]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed


def _measure(args: list[str], repeats: int) -> tuple[list[float], list[float]]:
    cold: list[float] = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="lorabench-speed-") as folder:
            cold.append(_once(args, Path(folder)))
    with tempfile.TemporaryDirectory(prefix="lorabench-speed-") as folder:
        _once(args, Path(folder))  # fill the cache, untimed
        warm = [_once(args, Path(folder)) for _ in range(repeats)]
    return cold, warm


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="Runs per case and cache state (default 3).")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="Only these cases (repeatable).")
    options = parser.parse_args()
    names = options.case or list(CASES)
    rows = []
    for name in names:
        cold, warm = _measure(CASES[name], options.repeats)
        rows.append((name, _cell(cold), _cell(warm)))
        print(f"measured {name}", file=sys.stderr, flush=True)
    width = max(len(r[0]) for r in rows)
    print(f"lorabench estimate, Llama-3.1-8B, wall time per command (median (min-max) of {options.repeats} runs)")
    print(f"{'case':<{width}}  {'cold cache':<24}  {'warm cache':<24}")
    for name, cold_cell, warm_cell in rows:
        print(f"{name:<{width}}  {cold_cell:<24}  {warm_cell:<24}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
