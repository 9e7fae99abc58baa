"""The demo: lorabench's main job on the embedded default, offline, in a few minutes on a laptop CPU.

1. Measure LoRA, QLoRA (4-bit), DoRA, rsLoRA and 8-bit LoRA on ``tiny`` with a built-in synthetic finance
   dataset (real transformers + PEFT + bitsandbytes runs; CUDA when present).
2. Predict the seed's memory table for Llama-3.1-8B: r8 and r4 on q/k/v x 16/8/4-bit x batch 4 and 8.
3. Cost a FinLoRA-sized job (Llama-3.1-8B on 4 x A5000, hours predicted by the roofline time engine with
   their 80% band; FinLoRA's published hours beside them, and the report says what is known where they
   differ) against GPT-4o-mini, a Gemini service and the BloombergGPT reference.
4. Write the report (Markdown, reST, CSV, JSON, HTML, plots) from those records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lorabench.records import write_json_atomic

__all__ = ["DEMO_RUNS", "DemoResult", "run_demo"]

# (name, method, bits) measured on `tiny`
DEMO_RUNS: tuple[tuple[str, str, int], ...] = (
    ("lora", "lora", 16),
    ("qlora", "qlora", 4),
    ("dora", "dora", 16),
    ("rslora", "rslora", 16),
    ("lora-8bit", "lora", 8),
)
SEED_MODEL = "llama-3.1-8b"
# FinLoRA's job: ~26M tokens per epoch, 4 epochs, ~167k examples, 4 x A5000; its published wall-clock hours.
FINLORA_TOKENS, FINLORA_EXAMPLES, FINLORA_EPOCHS = 26_000_000, 167_000, 4
FINLORA_HOURS = {"LoRA": 14.9, "QLoRA": 14.1, "DoRA": 15.9, "rsLoRA": 14.5}
FINLORA_HOURS_NOTE = (
    "FinLoRA's published hours are the sum over several adapters trained on its financial tasks, whose token "
    f"counts it does not publish, so they need not be one {FINLORA_TOKENS / 1e6:,.0f}M-token x "
    f"{FINLORA_EPOCHS}-epoch job as the prediction assumes"
)
FINLORA_SPECS = {  # FinLoRA's adapters: r8 on q/k/v, 8-bit base (QLoRA: 4-bit), its Axolotl micro batch and ckpt
    "LoRA": {"method": "lora", "bits": 8},
    "QLoRA": {"method": "qlora", "bits": 4},
    "DoRA": {"method": "dora", "bits": 8},
    "rsLoRA": {"method": "rslora", "bits": 8},
}

Step = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    """Where everything went, and the figures the summary prints."""

    out: Path
    report_files: list[Path]
    runs: list[dict[str, Any]]
    estimates: list[dict[str, Any]]
    cost_rows: list[Any]


def _measure(out: Path, steps: int, step: Step) -> list[dict[str, Any]]:
    from lorabench.measure.options import RunOptions
    from lorabench.measure.runner import run_training
    from lorabench.spec import parse_spec

    records = []
    for name, method, bits in DEMO_RUNS:
        step(f"measuring {name} ({bits}-bit) on tiny")
        spec = parse_spec({"model": "tiny", "method": method, "bits": bits, "seq_len": 64, "micro_batch": 4})
        options = RunOptions(out=out / "runs" / name, max_steps=steps, warmup_steps=2, examples=64)
        records.append(run_training(spec, options))
    return records


def _predict(out: Path, engine: Literal["simulate", "formula"], step: Step) -> list[dict[str, Any]]:
    from lorabench.predict import estimate
    from lorabench.spec import parse_spec

    records = []
    for rank in (8, 4):
        for bits in (16, 8, 4):
            for batch in (4, 8):
                step(f"predicting Llama-3.1-8B r{rank} {bits}-bit batch {batch} ({engine})")
                spec = parse_spec(
                    {
                        "model": SEED_MODEL,
                        "rank": rank,
                        "bits": bits,
                        "micro_batch": batch,
                        "seq_len": 512,
                        "grad_ckpt": True,
                        "targets": "q_proj,k_proj,v_proj",
                    }
                )
                record = estimate(spec, engine=engine)
                write_json_atomic(out / "estimates" / f"{spec.label()}-b{batch}.json", record)
                records.append(record)
    return records


def _cost(out: Path, step: Step) -> list[Any]:
    from lorabench.cost import evaluate, load_catalog
    from lorabench.cost.scenario import Scenario
    from lorabench.report import cost_record

    step("costing a FinLoRA-sized job against commercial fine-tuning")
    hosted: list[dict[str, Any]] = []
    for name, values in FINLORA_SPECS.items():
        # autocast: FinLoRA's Axolotl config says bf16: auto, so the HF Trainer runs the forward under autocast
        spec = {"model": SEED_MODEL, "seq_len": 512, "micro_batch": 4, "grad_ckpt": True, "autocast": True, **values}
        common = {"gpu": "A5000", "count": 4, "rate": "finlora-a5000"}
        hosted.append({"name": f"{name} (predicted)", "spec": spec, **common})
        hosted.append(
            {"name": f"{name} (FinLoRA, measured)", "hours": FINLORA_HOURS[name], "note": FINLORA_HOURS_NOTE, **common}
        )
    scenario = Scenario.model_validate(
        {
            "dataset": {"tokens": FINLORA_TOKENS, "examples": FINLORA_EXAMPLES},
            "epochs": FINLORA_EPOCHS,
            "self_hosted": hosted,
            "services": ["gpt-4o-mini", "gemini-2.5-flash-lite"],
            "references": ["bloomberggpt", "gemini-2.0-flash-lite-finlora"],
        }
    )
    rows = evaluate(scenario, load_catalog())
    write_json_atomic(out / "cost.json", cost_record(rows))
    return rows


def run_demo(
    out: Path, steps: int = 12, engine: Literal["simulate", "formula"] = "simulate", step: Step | None = None
) -> DemoResult:
    """Run the whole demo into ``out`` (records under runs/, estimates/, cost.json; the report under report/).

    Args:
        out: Output folder.
        steps: Optimizer steps per measured run.
        engine: Memory engine for the Llama-3.1-8B table (``simulate``, or ``formula`` for an instant table).
        step: Called with a description as each stage starts (progress display).
    """
    from lorabench.report import build_report, write_report

    say = step or (lambda _: None)
    runs = _measure(out, steps, say)
    estimates = _predict(out, engine, say)
    rows = _cost(out, say)
    say("writing the report")
    files = write_report(build_report(out), out / "report")
    return DemoResult(out, files, runs, estimates, rows)
