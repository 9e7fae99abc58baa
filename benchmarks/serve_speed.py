"""``lorabench serve``: how long the server takes to answer, and a warm formula estimate's latency.

*start* is the wall time from launching ``python -m lorabench.cli.main serve`` to the first 200 from
``GET /api/health`` (interpreter start-up and imports included; the compute worker warms up in the background and
is not part of it). *first estimate* is the first ``POST /api/estimate`` (it waits for the worker's imports and
builds the model's module graph). *warm* is ``--repeats`` more estimates of the same model with a different
batch / sequence length / GPU each time (what a user changing the form sends), timed on the client: median, p95
and max. Targets (issue 19): start < 5 s, warm median < 100 ms.

    PYTHONPATH=src python benchmarks/serve_speed.py --repeats 30
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _bodies(model: str, n: int) -> list[dict[str, Any]]:
    gpus = ["A5000", "A100-80GB", "H100-SXM", "RTX4090", "L40S"]
    return [
        {
            "model": model,
            "method": "qlora",
            "rank": 16,
            "micro_batch": 1 + i % 8,
            "seq_len": 256 * (1 + i % 6),
            "gpu": gpus[i % len(gpus)],
            "tokens": 10_000_000,
            "engine": "formula",
        }
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, help="Also write the figures as JSON here.")
    args = parser.parse_args()

    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", LORABENCH_CACHE_DIR=tempfile.mkdtemp(prefix="lorabench-bench-"))
    command = [sys.executable, "-m", "lorabench.cli.main", "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            while True:
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(f"the server exited with status {server.returncode}")
                time.sleep(0.02)
            start_s = time.perf_counter() - started
            bodies = _bodies(args.model, args.repeats + 1)
            t0 = time.perf_counter()
            first = client.post("/api/estimate", json=bodies[0])
            first_s = time.perf_counter() - t0
            first.raise_for_status()
            warm: list[float] = []
            for body in bodies[1:]:
                t0 = time.perf_counter()
                response = client.post("/api/estimate", json=body)
                warm.append(time.perf_counter() - t0)
                response.raise_for_status()
    finally:
        server.terminate()
        server.wait(timeout=30)
    warm.sort()
    figures = {
        "command": " ".join(["python", "-m", "lorabench.cli.main", "serve"]),
        "model": args.model,
        "start_s": round(start_s, 3),
        "first_estimate_s": round(first_s, 3),
        "warm_estimate_median_s": round(statistics.median(warm), 4),
        "warm_estimate_p95_s": round(warm[max(0, round(0.95 * len(warm)) - 1)], 4),
        "warm_estimate_max_s": round(warm[-1], 4),
        "repeats": len(warm),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(f"server start (launch -> first 200 from /api/health): {start_s:.2f} s   (target < 5 s)")
    print(f"first formula estimate ({args.model}, worker warming up): {first_s:.2f} s")
    print(
        f"warm formula estimate, {len(warm)} requests: median {figures['warm_estimate_median_s'] * 1000:.0f} ms, "
        f"p95 {figures['warm_estimate_p95_s'] * 1000:.0f} ms, max {warm[-1] * 1000:.0f} ms   (target < 100 ms)"
    )
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {figures['load_average_1m']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
