"""Fit the formula engine's coefficients to simulations and print the held-out error.

Usage: python benchmarks/fit_formula.py [--train 100] [--heldout 20] [--seed 0] [--workers N]
       [--cache FILE.jsonl] [--out src/lorabench/predict/memory/formula_coefficients.json]
       [--no-fullsize] [--groups G,...]

A design of small-to-medium Llama-architecture models (local config dirs: hidden size, heads, key/value heads,
intermediate size, layers and vocabulary drawn at random), each with a random micro batch, sequence length,
targets, rank, dropout and optimizer, is simulated
(``lorabench.predict.memory.simulation.engine``, padded batches) in every
group -- device (cuda, cpu) x base bits (16, 8, 4) x gradient checkpointing x DoRA or not. For each group and
each dynamic component (activations, temporaries, gradients at the peak) a non-negative least-squares fit over
the formula's features (``lorabench.predict.memory.formula.FEATURES``), weighted by 1 / simulated peak (so it minimises
relative error), gives the coefficients. Held-out points -- fresh random configs, some with gradient
accumulation, plus full-size catalog models (Llama-3.1-8B at batch 4, seq 512; Llama-3.2-1B all-linear at batch
2, seq 2048) -- are then predicted by :func:`formula_memory` and compared with the simulation.

Simulations are cached in ``--cache`` (JSON lines), so a refit after a change to the features does not simulate
again. Prints the error table; writes the coefficients, the design, the date and the held-out errors to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "lorabench" / "predict" / "formula_coefficients.json"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "lorabench-formula-sims.jsonl"
DEVICES = ("cuda", "cpu")
BITS = (16, 8, 4)
TARGET_SETS = (
    "q_proj,k_proj,v_proj",
    "q_proj,v_proj",
    "all-linear",
    "o_proj,down_proj",
    "gate_proj,up_proj,down_proj",
    "q_proj,k_proj,v_proj,o_proj",
)
FULLSIZE = (
    {"name": "llama-3.1-8b b4 s512 qkv r8", "model": "llama-3.1-8b", "micro_batch": 4, "seq_len": 512},
    {
        "name": "llama-3.2-1b b2 s2048 all-linear r16",
        "model": "llama-3.2-1b",
        "micro_batch": 2,
        "seq_len": 2048,
        "targets": "all-linear",
        "rank": 16,
    },
)
COMPONENTS = ("activations", "temporaries", "gradients")


# ---------------------------------------------------------------- design
def group_settings() -> list[tuple[str, int, bool, bool]]:
    return [(d, b, c, dora) for d in DEVICES for b in BITS for c in (False, True) for dora in (False, True)]


def group_name(device: str, bits: int, ckpt: bool, dora: bool) -> str:
    return f"{device}-{bits}bit-{'ckpt' if ckpt else 'nockpt'}-{'dora' if dora else 'lora'}"


def draw_point(rng: random.Random, heldout: bool) -> dict[str, Any]:
    """One random Llama-architecture config and training shape."""
    while True:
        head_dim = rng.choice([32, 64, 128])
        heads = rng.choice([2, 4, 8, 16, 32])
        hidden = head_dim * heads
        if 128 <= hidden <= 4096:
            break
    kv_heads = rng.choice([k for k in (heads, heads // 2, heads // 4, heads // 8, 1) if k >= 1 and heads % k == 0])
    intermediate = max(64, round(hidden * rng.uniform(2.0, 4.0) / 64) * 64)
    return {
        "arch": {
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": rng.choice([1, 2, 3, 4, 6, 8, 12]),
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "vocab_size": rng.choice([256, 1000, 4096, 16384, 32000, 65536, 128256]),
        },
        "micro_batch": rng.choice([1, 2, 3, 4, 8]),
        "seq_len": rng.choice([16, 64, 128, 256, 512, 1024, 2048]),
        "targets": rng.choice(TARGET_SETS),
        "rank": rng.choice([4, 8, 16, 32, 64]),
        "dropout": 0.05 if rng.random() < 0.7 else 0.0,
        "optimizer": rng.choice(["adamw_torch", "adamw_torch", "adamw_8bit", "paged_adamw_8bit"]),
        "grad_accum": 2 if heldout and rng.random() < 0.25 else 1,
    }


def write_arch(root: Path, arch: dict[str, Any]) -> Path:
    """A local model directory with a Llama config.json for ``arch``."""
    name = (
        "llama-h{hidden_size}-i{intermediate_size}-l{num_hidden_layers}-a{num_attention_heads}"
        "-kv{num_key_value_heads}-d{head_dim}-v{vocab_size}"
    )
    folder = root / name.format(**arch)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
        **arch,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1), "utf-8")
    return folder


def spec_values(point: dict[str, Any], model: str, bits: int, ckpt: bool, dora: bool) -> dict[str, Any]:
    return {
        "model": model,
        "method": "dora" if dora else "lora",
        "bits": bits,
        "rank": point.get("rank", 8),
        "dropout": point.get("dropout", 0.05),
        "targets": point.get("targets", "q_proj,k_proj,v_proj"),
        "optimizer": point.get("optimizer", "adamw_torch"),
        "grad_ckpt": ckpt,
        "grad_accum": point.get("grad_accum", 1),
        "micro_batch": point["micro_batch"],
        "seq_len": point["seq_len"],
    }


# ---------------------------------------------------------------- simulation (worker processes)
def simulate_task(task: dict[str, Any]) -> dict[str, Any]:
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    from lorabench.predict.memory.simulation.engine import simulate
    from lorabench.spec import parse_spec

    spec = parse_spec(task["spec"])
    try:
        result = simulate(spec, task["device"])
    except Exception as exc:  # report and skip: the simulation may not handle every config yet
        return {**task, "error": f"{type(exc).__name__}: {exc}"}
    return {
        **task,
        "peak": result.peak_allocated_bytes,
        "breakdown": result.breakdown,
        "phase": result.peak_phase,
        "paged": result.paged_optimizer_bytes,
        "workspace": result.cublas_workspace_bytes,
        "seconds": result.seconds,
    }


def task_key(task: dict[str, Any]) -> str:
    return json.dumps([task["spec"], task["device"]], sort_keys=True)


def build_tasks(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    rng, held_rng = random.Random(args.seed), random.Random(args.seed + 1)
    points = [("heldout", draw_point(held_rng, True)) for _ in range(args.heldout)]
    points += [("train", draw_point(rng, False)) for _ in range(args.train)]
    wanted = set(args.groups.split(",")) if args.groups else None
    tasks: list[dict[str, Any]] = []
    for index, (role, point) in enumerate(points):
        model = str(write_arch(root, point["arch"]))
        for device, bits, ckpt, dora in group_settings():
            group = group_name(device, bits, ckpt, dora)
            if wanted is None or group in wanted:
                spec = spec_values(point, model, bits, ckpt, dora)
                tasks.append({"role": role, "point": index, "group": group, "device": device, "spec": spec})
    if args.fullsize:
        for full in FULLSIZE:
            for device, bits, ckpt, dora in group_settings():
                group = group_name(device, bits, ckpt, dora)
                if wanted is None or group in wanted:
                    spec = spec_values(full, full["model"], bits, ckpt, dora)
                    tasks.append(
                        {"role": "fullsize", "point": full["name"], "group": group, "device": device, "spec": spec}
                    )
    return tasks


def run_simulations(tasks: list[dict[str, Any]], cache: Path, workers: int) -> list[dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if cache.is_file():
        for line in cache.read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[task_key(row)] = row
    todo = [t for t in tasks if task_key(t) not in done]
    print(f"simulations: {len(tasks)} needed, {len(tasks) - len(todo)} cached, {len(todo)} to run", flush=True)
    started = time.perf_counter()
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool, cache.open("a", encoding="utf-8") as sink:
            futures = [pool.submit(simulate_task, t) for t in todo]
            for count, future in enumerate(as_completed(futures), 1):
                row = future.result()
                done[task_key(row)] = row
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                if count % 50 == 0 or count == len(todo):
                    print(f"  {count}/{len(todo)} in {time.perf_counter() - started:.0f} s", flush=True)
    rows = []
    for task in tasks:
        row = dict(done[task_key(task)])
        row["role"], row["point"], row["group"] = task["role"], task["point"], task["group"]
        rows.append(row)
    return rows


# ---------------------------------------------------------------- fitting
def nnls(a: Any, b: Any, max_iter: int = 500) -> Any:
    """Lawson-Hanson non-negative least squares: argmin ||a x - b|| subject to x >= 0."""
    import numpy as np

    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    tol = 10 * np.finfo(float).eps * np.linalg.norm(a, 1) * max(m, n)
    for _ in range(max_iter):
        if passive.all() or w[~passive].max(initial=-np.inf) <= tol:
            break
        candidates = np.where(~passive, w, -np.inf)
        passive[int(np.argmax(candidates))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            mask = passive & (z <= 0)
            alpha = np.min(x[mask] / (x[mask] - z[mask]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


def _fit_piece(x: Any, ys: dict[str, Any], weight: Any) -> dict[str, Any]:
    """Non-negative least squares per component, rows weighted by ``weight``."""
    import numpy as np

    scale = np.abs(x * weight[:, None]).max(axis=0)
    scale[scale == 0] = 1.0
    design = x * weight[:, None] / scale
    return {c: nnls(design, ys[c] * weight) / scale for c in COMPONENTS}


def _totals(pieces: list[dict[str, Any]], x: Any) -> Any:
    import numpy as np

    return np.stack([sum(x @ p[c] for c in COMPONENTS) for p in pieces], axis=1)


def _fit_pieces(x: Any, ys: dict[str, Any], weight: Any, assign: Any, groups: list[int]) -> list[dict[str, Any]]:
    """One joint non-negative least-squares fit per component: the per-layer "(L-1)" coefficients are shared by every
    piece (the layers before the last hold the same saved tensors whichever moment peaks), the rest are per piece."""
    import numpy as np

    from lorabench.predict.memory.formula import FEATURES

    shared = [i for i, f in enumerate(FEATURES) if f.endswith("*(L-1)")]
    own = [i for i in range(len(FEATURES)) if i not in shared]
    blocks = [x[:, shared]]
    for k in groups:
        block = np.zeros((x.shape[0], len(own)))
        block[assign == k] = x[assign == k][:, own]
        blocks.append(block)
    design = np.hstack(blocks) * weight[:, None]
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    pieces: list[dict[str, Any]] = [{} for _ in groups]
    for component in COMPONENTS:
        coef = nnls(design / scale, ys[component] * weight) / scale
        for j in range(len(groups)):
            vector = np.zeros(len(FEATURES))
            vector[shared] = coef[: len(shared)]
            start = len(shared) + j * len(own)
            vector[own] = coef[start : start + len(own)]
            pieces[j][component] = vector
    return pieces


def _max_affine(x: Any, ys: dict[str, Any], weight: Any, assign: Any, pieces_wanted: int) -> tuple[float, Any, Any]:
    """Magnani-Boyd: fit the pieces on the rows each predicts the maximum for, reassign, repeat."""
    import numpy as np

    y = sum(ys.values())
    best: tuple[float, Any, Any] | None = None
    for _ in range(50):
        groups = [k for k in range(pieces_wanted) if (assign == k).any()]
        pieces = _fit_pieces(x, ys, weight, assign, groups)
        totals = _totals(pieces, x)
        loss = float((((totals.max(axis=1) - y) * weight) ** 2).sum())
        new = totals.argmax(axis=1)
        if best is None or loss < best[0]:
            best = (loss, pieces, new)
        if len(pieces) == pieces_wanted and np.array_equal(new, assign):
            break
        assign, pieces_wanted = new, len(pieces)
    assert best is not None
    return best


def fit_group(
    rows: list[dict[str, Any]], features: list[list[float]], pieces: int, restarts: int
) -> list[dict[str, Any]]:
    """A max of ``pieces`` linear models (one per candidate peak moment), each with per-component coefficients."""
    import numpy as np

    from lorabench.predict.memory.formula import FEATURES

    x = np.array(features, dtype=float)
    weight = 1.0 / np.array([r["peak"] for r in rows], dtype=float)
    ys = {c: np.array([r["breakdown"][c] for r in rows], dtype=float) for c in COMPONENTS}
    ys["temporaries"] -= np.array([workspace(r) for r in rows], dtype=float)  # exact, added by the formula
    y = sum(ys.values())
    rng = np.random.default_rng(0)
    logits_share = x[:, FEATURES.index("T*V")] / np.maximum(y, 1.0)
    starts = [np.zeros(len(rows), dtype=int), np.argsort(np.argsort(logits_share)) * pieces // len(rows)]
    starts += [rng.integers(0, pieces, len(rows)) for _ in range(restarts)]
    _, fitted, assign = min((_max_affine(x, ys, weight, s, pieces) for s in starts), key=lambda t: t[0])
    out = []
    for k, piece in enumerate(fitted):
        phases = [r["phase"] for r, a in zip(rows, assign, strict=True) if a == k] or ["backward"]
        out.append(
            {
                "phase": max(set(phases), key=phases.count),
                "n_rows": int((assign == k).sum()),
                "coefficients": {
                    c: {f: float(v) for f, v in zip(FEATURES, piece[c], strict=True) if v != 0.0} for c in COMPONENTS
                },
            }
        )
    return out


def workspace(row: dict[str, Any]) -> int:
    """The cuBLAS workspaces in a simulated row's temporaries (older cached rows lack the field)."""
    if "workspace" in row:
        return int(row["workspace"])
    from lorabench.predict.memory.simulation.engine import cublas_workspace_bytes

    return cublas_workspace_bytes(row["spec"].get("gpu")) if row["device"] == "cuda" else 0


def feature_rows(rows: list[dict[str, Any]]) -> list[list[float]]:
    from lorabench.predict.memory.formula import formula_features
    from lorabench.spec import parse_spec

    out = []
    for row in rows:
        values = formula_features(parse_spec(row["spec"]), row["device"])
        out.append(list(values.values()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--train", type=int, default=100, help="random training configs (each in every group)")
    parser.add_argument("--heldout", type=int, default=20, help="random held-out configs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--models-dir", type=Path, default=Path(tempfile.gettempdir()) / "lorabench-formula-models")
    parser.add_argument("--no-fullsize", dest="fullsize", action="store_false", help="skip the full-size points")
    parser.add_argument("--groups", default="", help="comma list of groups to fit (default: all)")
    parser.add_argument("--pieces", type=int, default=3, help="linear pieces (candidate peak moments) per group")
    parser.add_argument("--restarts", type=int, default=12, help="random starts of the piecewise fit")
    args = parser.parse_args()

    tasks = build_tasks(args, args.models_dir)
    rows = run_simulations(tasks, args.cache, args.workers)
    failed = [r for r in rows if "error" in r]
    for row in failed:
        print(f"skipped (simulate failed): {row['group']} point {row['point']}: {row['error']}")
    rows = [r for r in rows if "error" not in r]

    import lorabench.predict.memory.formula as formula

    groups: dict[str, Any] = {}
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_group.setdefault(row["group"], []).append(row)
    for name in sorted(by_group):
        train = [r for r in by_group[name] if r["role"] == "train"]
        groups[name] = {
            "pieces": fit_group(train, feature_rows(train), args.pieces, args.restarts),
            "n_train": len(train),
        }
    previous = json.loads(args.out.read_text("utf-8")) if args.out.is_file() else {}
    merged_groups = dict(previous.get("groups", {})) if args.groups else {}
    merged_groups.update(groups)
    document: dict[str, Any] = {
        "schema": "lorabench.formula_coefficients",
        "schema_version": 1,
        "created": dt.date.today().isoformat(),
        "libraries": library_versions(),
        "features": list(formula.FEATURES),
        "model_types": ["llama"],
        "components": list(COMPONENTS),
        "design": {
            "generator": "benchmarks/fit_formula.py",
            "seed": args.seed,
            "train_configs": args.train,
            "heldout_configs": args.heldout,
            "fullsize_heldout": [f["name"] for f in FULLSIZE] if args.fullsize else [],
            "architecture": "llama (local config.json), hidden 128-4096, head dim 32/64/128, kv heads H..1, "
            "intermediate 2-4 x hidden, layers 1-12, vocab 256-128256",
            "shapes": "micro batch 1-8, seq len 16-2048; targets "
            + " | ".join(TARGET_SETS)
            + "; rank 4-64; dropout 0.05 or 0; optimizers adamw_torch/adamw_8bit/paged_adamw_8bit; "
            "held-out: grad_accum 2 for about a quarter",
            "padding": "padded",
            "fit": (
                f"per group, the maximum of up to {args.pieces} linear models (candidate peak moments; Magnani-Boyd "
                "max-affine fit, best of several starts); per component one non-negative least-squares fit with rows "
                "weighted by 1 / simulated peak, the per-layer '(L-1)' coefficients shared by every piece; the cuBLAS "
                "workspaces are taken out of the temporaries (the formula adds them exactly)"
            ),
        },
        "groups": dict(sorted(merged_groups.items())),
    }
    formula.set_coefficients(document)
    table = evaluate(rows)
    for name, stats in table["groups"].items():
        document["groups"][name]["heldout"] = stats
    document["heldout"] = table["overall"]
    document["heldout_points"] = table["points"]
    args.out.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
    print(f"written: {args.out}")
    print_speed()


def print_speed() -> None:
    """Time formula_memory: the first call for a model (builds its graph) and later calls."""
    from lorabench.predict.memory import formula
    from lorabench.predict.memory.formula import formula_memory
    from lorabench.spec import parse_spec

    for cached in (formula._resolve, formula._graph, formula._account, formula._static):
        cached.cache_clear()
    spec = parse_spec({"model": "llama-3.1-8b", "bits": 4, "method": "qlora", "micro_batch": 4, "seq_len": 512})
    started = time.perf_counter()
    formula_memory(spec)
    first = time.perf_counter() - started
    calls = 2000
    started = time.perf_counter()
    for i in range(calls):
        formula_memory(spec, micro_batch=1 + i % 16, seq_len=128 + i)
    each = (time.perf_counter() - started) / calls
    print(f"formula_memory on llama-3.1-8b: first call {first:.2f} s, then {each * 1e6:.0f} us per call")


def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def evaluate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from lorabench.predict.memory.formula import formula_memory
    from lorabench.spec import parse_spec

    per_group: dict[str, list[float]] = {}
    train_err: dict[str, list[float]] = {}
    points: list[dict[str, Any]] = []
    for row in rows:
        est = formula_memory(parse_spec(row["spec"]), row["device"])
        err = est.peak_allocated_bytes / row["peak"] - 1
        if row["role"] == "train":
            train_err.setdefault(row["group"], []).append(abs(err))
            continue
        per_group.setdefault(row["group"], []).append(abs(err))
        if row["role"] == "fullsize" or abs(err) > 0.05:
            points.append(
                {
                    "group": row["group"],
                    "point": row["point"],
                    "role": row["role"],
                    "simulate_bytes": row["peak"],
                    "formula_bytes": est.peak_allocated_bytes,
                    "relative_error": round(err, 5),
                }
            )
    print()
    print(f"{'group':<24} {'train med':>9} {'train max':>9} {'held n':>6} {'held med':>9} {'held max':>9}")
    stats: dict[str, Any] = {}
    for name in sorted(per_group):
        held, train = per_group[name], train_err.get(name, [0.0])
        stats[name] = {
            "n": len(held),
            "median_relative_error": round(statistics.median(held), 5),
            "max_relative_error": round(max(held), 5),
        }
        print(
            f"{name:<24} {statistics.median(train):>9.2%} {max(train):>9.2%} {len(held):>6} "
            f"{statistics.median(held):>9.2%} {max(held):>9.2%}"
        )
    everything = [e for v in per_group.values() for e in v]
    overall = {
        "n": len(everything),
        "median_relative_error": round(statistics.median(everything), 5) if everything else None,
        "max_relative_error": round(max(everything), 5) if everything else None,
    }
    print(
        f"held-out overall: n={overall['n']} median |error| {overall['median_relative_error']:.2%} "
        f"max {overall['max_relative_error']:.2%}"
    )
    print()
    print(f"{'full-size point':<40} {'group':<24} {'simulate GB':>11} {'formula GB':>10} {'error':>8}")
    for p in points:
        if p["role"] == "fullsize":
            print(
                f"{p['point']:<40} {p['group']:<24} {p['simulate_bytes'] / 1e9:>11.3f} "
                f"{p['formula_bytes'] / 1e9:>10.3f} {p['relative_error']:>8.2%}"
            )
    return {"groups": stats, "overall": overall, "points": points}


if __name__ == "__main__":
    sys.exit(main())
