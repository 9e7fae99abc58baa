"""Check the simulation against real training on this machine's CPU.

:func:`measure_cpu_peak` runs the simulation's recipe for real: the model loaded with random weights by
:func:`lorabench.models.load.load_for_training` (bitsandbytes really quantizes 8/4-bit bases), prepared by
:func:`lorabench.recipe.prepare_for_training`, a batch of synthetic FinLoRA-style records tokenized by a BPE trained
on them and padded to ``seq_len``, and two optimizer steps. Memory is read with the independent counter of
:mod:`lorabench.measure.trackers.cpu_memory` (PyTorch profiler allocator events) in two windows: the bytes
still live after set-up (weights, adapter, batch), plus the peak of what the training steps allocate on top.
(One window over everything would also see loading transients, which are not part of a training step.)

:func:`validate` compares that with ``simulate(spec, "cpu")``; :func:`main` runs the tiny-model matrix and
prints the table (``python -m lorabench.predict.memory.simulation.validate``).
"""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lorabench.errors import MeasurementError
from lorabench.spec import RunSpec, parse_spec

__all__ = [
    "CpuMeasurement",
    "ValidationRow",
    "main",
    "measure_cpu_peak",
    "render_table",
    "validate",
    "validation_specs",
]


@dataclass(frozen=True)
class CpuMeasurement:
    """A measured CPU training step.

    Attributes:
        static_bytes: Bytes live after set-up (weights, adapter, batch), from the first window.
        step_peak_bytes: Peak of bytes allocated during the two training steps, on top of ``static_bytes``.
        padded: Whether the batch had padding (so transformers built a 4-D attention mask).
    """

    static_bytes: int
    step_peak_bytes: int
    padded: bool

    @property
    def peak_bytes(self) -> int:
        """The training peak: static bytes plus the steps' peak."""
        return self.static_bytes + self.step_peak_bytes


def measure_cpu_peak(spec: RunSpec, task: str = "sentiment", seed: int = 0) -> CpuMeasurement:
    """Run two real training steps of ``spec`` on the CPU and measure the peak of allocated bytes.

    Args:
        spec: The run spec (its ``micro_batch`` and ``seq_len`` size the batch).
        task: Synthetic task for the records (``sentiment`` is short, so rows get padding; ``xbrl`` fills them).
        seed: Seed for the records and the random weights.

    Returns:
        The measurement.

    Raises:
        MeasurementError: The profiler returned no memory figure.
    """
    import torch

    from lorabench.data.encode import collate, encode_examples
    from lorabench.data.synthetic import synthetic_dataset
    from lorabench.data.tokenizer import build_tokenizer
    from lorabench.measure.trackers.cpu_memory import CpuTensorMemory
    from lorabench.models import resolve_model
    from lorabench.models.build import quiet_hf
    from lorabench.models.load import load_for_training
    from lorabench.recipe import make_optimizer, prepare_for_training, training_step

    resolved = resolve_model(spec.model)
    vocab = int(getattr(resolved.config, "vocab_size", 32000))
    records = synthetic_dataset(task, max(4 * spec.micro_batch, 16), seed=seed)
    tokenizer = build_tokenizer([f"{r['context']} {r['target']}" for r in records], min(vocab, 4096))
    examples = encode_examples(records, tokenizer, spec.seq_len)
    pad_id = tokenizer.pad_token_id if isinstance(tokenizer.pad_token_id, int) else 0
    gc.collect()
    with CpuTensorMemory() as setup, quiet_hf():
        base = load_for_training(resolved, spec, torch.device("cpu"), random_weights=True, seed=seed)
        model = prepare_for_training(base, spec)
        del base
        model.train()
        optimizer = make_optimizer(spec, [p for p in model.parameters() if p.requires_grad])
        batch = collate(examples[: spec.micro_batch], pad_id, pad_to=spec.seq_len)
        gc.collect()
    micro = min(spec.grad_accum, 2)
    with CpuTensorMemory() as steps, quiet_hf():
        for _ in range(2):
            training_step(model, [batch] * micro, optimizer, spec.grad_accum)
    static, peak = setup.final_live_bytes, steps.result.value if steps.result else None
    if static is None or peak is None:
        raise MeasurementError("the CPU memory counter returned no figure")
    padded = bool((batch["attention_mask"] == 0).any())
    del model, optimizer, batch
    gc.collect()
    return CpuMeasurement(static_bytes=int(static), step_peak_bytes=int(peak), padded=padded)


@dataclass(frozen=True)
class ValidationRow:
    """Measured and simulated peak of one spec; ``error`` is simulated / measured - 1."""

    spec: RunSpec
    measured_bytes: int | None
    simulated_bytes: int
    padded: bool
    note: str | None = None
    formula_bytes: int | None = None

    @property
    def error(self) -> float | None:
        """Relative error of the simulation, or None when the real run could not be measured."""
        if self.measured_bytes is None:
            return None
        return self.simulated_bytes / self.measured_bytes - 1.0

    @property
    def formula_error(self) -> float | None:
        """Relative error of the formula engine, or None without a measurement or a formula figure."""
        if self.measured_bytes is None or self.formula_bytes is None:
            return None
        return self.formula_bytes / self.measured_bytes - 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the spec's varied fields, both predictions, the measurement and the errors."""
        s = self.spec
        return {
            "model": s.model,
            "method": s.method,
            "bits": s.bits,
            "rank": s.rank,
            "micro_batch": s.micro_batch,
            "seq_len": s.seq_len,
            "grad_ckpt": s.grad_ckpt,
            "padded": self.padded,
            "measured_peak_bytes": self.measured_bytes,
            "simulated_peak_bytes": self.simulated_bytes,
            "formula_peak_bytes": self.formula_bytes,
            "simulate_error": self.error,
            "formula_error": self.formula_error,
            "note": self.note,
        }


def validate(spec: RunSpec, task: str = "sentiment") -> ValidationRow:
    """Measure ``spec`` on the CPU and simulate it for the CPU with the same padding.

    A real run that fails (e.g. a library bug for that combination) gives a row without a measurement and
    the failure as its note.
    """
    from lorabench.predict.memory.formula import formula_memory
    from lorabench.predict.memory.simulation.engine import simulate

    try:
        measured = measure_cpu_peak(spec, task)
    except Exception as exc:  # a failing real run is a finding of the matrix, not a crash of it
        padded = task != "xbrl"
        sim = simulate(spec, "cpu", padding="padded" if padded else "packed")
        message = str(exc).splitlines()[0] if str(exc) else ""
        note = f"real run failed: {type(exc).__name__}: {message}"
        formula = formula_memory(spec, "cpu").peak_allocated_bytes if padded else None
        return ValidationRow(spec, None, sim.peak_allocated_bytes, padded, note, formula)
    sim = simulate(spec, "cpu", padding="padded" if measured.padded else "packed")
    # the formula describes padded batches (an attention mask), as its coefficients were fitted
    formula = formula_memory(spec, "cpu").peak_allocated_bytes if measured.padded else None
    return ValidationRow(spec, measured.peak_bytes, sim.peak_allocated_bytes, measured.padded, None, formula)


def validation_specs(model: str = "tiny", seq_len: int = 128) -> list[RunSpec]:
    """The matrix: every method x 16/8/4-bit (qlora: 4-bit only) x rank 4/8 x batch 2/4 x checkpointing."""
    specs: list[RunSpec] = []
    for method in ("lora", "qlora", "dora", "rslora"):
        for bits in (16, 8, 4):
            if method == "qlora" and bits != 4:
                continue
            for rank in (4, 8):
                for batch in (2, 4):
                    for ckpt in (False, True):
                        raw = {"model": model, "method": method, "bits": bits, "rank": rank}
                        raw.update({"micro_batch": batch, "seq_len": seq_len, "grad_ckpt": ckpt})
                        specs.append(parse_spec(raw))
    return specs


def render_table(rows: Sequence[ValidationRow]) -> str:
    """A Markdown table of the rows and a summary line (median and max |error|)."""
    lines = [
        "| method | bits | rank | batch | ckpt | measured MB | simulated MB | error | formula MB | error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.spec
        measured = "n/a" if row.measured_bytes is None else f"{row.measured_bytes / 1e6:.3f}"
        error = row.error
        shown = f"{100 * error:+.2f}%" if error is not None else f"n/a ({row.note})"
        formula = "n/a" if row.formula_bytes is None else f"{row.formula_bytes / 1e6:.3f}"
        f_error = row.formula_error
        f_shown = "n/a" if f_error is None else f"{100 * f_error:+.2f}%"
        lines.append(
            f"| {s.method} | {s.bits} | {s.rank} | {s.micro_batch} | {'on' if s.grad_ckpt else 'off'} | "
            f"{measured} | {row.simulated_bytes / 1e6:.3f} | {shown} | {formula} | {f_shown} |"
        )
    lines.append("")
    lines.extend(summary_lines(rows))
    return "\n".join(lines)


def _summary(name: str, errors: Sequence[float], total: int) -> str:
    if not errors:
        return f"{name}: no measured cell of {total}"
    magnitudes = [abs(e) for e in errors]
    return (
        f"{name}: {len(errors)} measured of {total}: median |error| {100 * statistics.median(magnitudes):.2f}%, "
        f"max {100 * max(magnitudes):.2f}%"
    )


def summary_lines(rows: Sequence[ValidationRow]) -> list[str]:
    """One line per engine: cells measured, median and max |error| against the measurement."""
    simulate_errors = [row.error for row in rows if row.error is not None]
    formula_errors = [row.formula_error for row in rows if row.formula_error is not None]
    return [_summary("simulate", simulate_errors, len(rows)), _summary("formula", formula_errors, len(rows))]


def validation_record(rows: Sequence[ValidationRow], task: str) -> dict[str, Any]:
    """The JSON-ready record of a matrix run: environment, counter, rows and the summary."""
    import torch

    from lorabench.measure.environment import describe_environment

    return {
        "schema": "lorabench.cpu_validation",
        "schema_version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "command": f"python -m lorabench.predict.memory.simulation.validate {task} --out DIR",
        "measured_counter": (
            "torch.profiler allocator events (profile_memory): bytes live after set-up + peak of the two "
            "training steps on top (lorabench.measure.trackers.cpu_memory)"
        ),
        "predicted": {
            "simulate": "simulate(spec, 'cpu') with the measured batch's padding",
            "formula": "formula_memory(spec, 'cpu') (padded batches only)",
        },
        "environment": describe_environment(torch.device("cpu")),
        "summary": summary_lines(rows),
        "rows": [row.to_dict() for row in rows],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the validation matrix on the CPU and write the table to stdout.

    Arguments: ``[task]`` (default ``sentiment``: padded batches; ``xbrl``: full rows, no padding).
    """
    import argparse

    from lorabench.records import write_json_atomic, write_text_atomic

    parser = argparse.ArgumentParser(prog="python -m lorabench.predict.memory.simulation.validate")
    parser.add_argument("task", nargs="?", default="sentiment", help="sentiment (padded) or xbrl (full rows)")
    parser.add_argument("--out", type=Path, help="write validation.json, validation.csv and validation.md here")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    rows: list[ValidationRow] = []
    for spec in validation_specs():
        rows.append(validate(spec, args.task))
        sys.stderr.write(
            f"[{len(rows)}] {spec.method} {spec.bits}-bit r{spec.rank} b{spec.micro_batch} "
            f"ckpt={spec.grad_ckpt}: error {rows[-1].error}\n"
        )
    table = render_table(rows)
    sys.stdout.write(table + "\n")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        record = validation_record(rows, args.task)
        write_json_atomic(args.out / "validation.json", record)
        _write_csv(args.out / "validation.csv", [row.to_dict() for row in rows])
        header = f"CPU validation matrix ({record['created']}, task {args.task}); command: {record['command']}\n\n"
        write_text_atomic(args.out / "validation.md", header + table + "\n")


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    import csv
    import io

    from lorabench.records import write_text_atomic

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


if __name__ == "__main__":
    main()
