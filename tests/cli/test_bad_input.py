"""Bad input, systematically: every command and loader, fed wrong types, missing keys, out-of-range values, empty
files, binary garbage, huge values and unicode.

Every case must end the same way: exit status 2, exactly one line on stderr that names the file, field or line
(``expect`` is a fragment of it), no traceback, and no output file created (``absent`` lists what must not exist).

To add a command (``infer`` ...), append rows to ``CASES``: ``{d}`` in argv and file names is the test's temporary
folder; ``files`` are created there first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lorabench.cli.main import main

TINY_SPEC = "model: tiny\nseq_len: 16\nmicro_batch: 2\n"
GOOD_JSONL = '{"context": "a", "target": "b"}\n'
GOOD_CATALOG = (
    "schema_version: 1\nprovider: me\ngpu_rates:\n"
    '  - {id: me-a5000, gpu: A5000, usd_per_gpu_hour: 0.3, prices_checked: "2026-01-01", source: "https://x.org"}\n'
)
GOOD_MATRIX = "base: {model: tiny}\nmatrix: {rank: [4]}\noptions: {max_steps: 2, warmup_steps: 1}\n"
GOOD_SCENARIO = "dataset: {tokens: 1000}\nservices: []\n"
LORA_CONFIG = json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]})


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the files it reads, and what the error line must say."""

    id: str
    argv: tuple[str, ...]
    expect: str
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    absent: tuple[str, ...] = ("o",)


def _case(id: str, argv: str, expect: str, files: Mapping[str, str | bytes] | None = None, **kw: object) -> Case:
    return Case(id, tuple(argv.split()), expect, dict(files or {}), **kw)  # type: ignore[arg-type]


# Contents no loader may accept; the message must name the file.
GARBAGE: dict[str, bytes] = {
    "empty": b"",
    "blank": b"  \n\t\n",
    "binary": bytes(range(256)) * 8,
    "nul": b"model: tiny\x00\n",
    "latin1": "model: caf\xe9 \xff".encode("latin-1"),
    "bad-yaml": b"model: [tiny\nrank: {\n",
    "list": b"- a\n- b\n",
    "scalar": b"42\n",
    "tab-indent": b"model:\n\t- x\n",
    "alias-bomb": b"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n",
    "unicode-keys": "мод: 🚀\n".encode(),
}

# (command template with {f} = the file, the file name) for every loader that reads a file.
FILE_LOADERS: dict[str, tuple[str, str]] = {
    "spec-yaml": ("estimate --config {f} --engine none --out {d}/o", "spec.yaml"),
    "adapter-json": ("estimate --config {f} --engine none --out {d}/o", "adapter_config.json"),
    "run-config": ("run --config {f} --out {d}/o", "run.yaml"),
    "catalog": ("catalog --catalog {f}", "prices.yaml"),
    "cost-catalog": ("cost {d}/scenario.yaml --catalog {f} --out {d}/o", "prices.yaml"),
    "matrix": ("sweep {f} --out {d}/o", "matrix.yaml"),
    "scenario": ("cost {f} --out {d}/o", "scenario.yaml"),
    "dataset-run": ("run --model tiny --dataset {f} --out {d}/o", "data.jsonl"),
    "dataset-sweep": ("sweep {d}/m.yaml --out {d}/o", "data.jsonl"),
    "dataset-cost": ("cost {d}/s.yaml --out {d}/o", "data.jsonl"),
    "calibration": (
        "estimate --model tiny --engine none --gpu A5000 --tokens 1000 --calibration {f} --out {d}/o",
        "calibration.json",
    ),
}
HELPERS: dict[str, dict[str, str]] = {
    "cost-catalog": {"scenario.yaml": GOOD_SCENARIO},
    "dataset-sweep": {"m.yaml": GOOD_MATRIX.replace("max_steps", "dataset: {d}/data.jsonl, max_steps")},
    "dataset-cost": {"s.yaml": "dataset: {path: data.jsonl}\n"},
}

GARBAGE_CASES = [
    Case(
        f"{loader}-{kind}",
        tuple(template.format(f="{d}/" + name, d="{d}").split()),
        name,
        {name: content, **HELPERS.get(loader, {})},
    )
    for loader, (template, name) in FILE_LOADERS.items()
    for kind, content in GARBAGE.items()
]

CASES: list[Case] = [
    *GARBAGE_CASES,
    # --- missing files and folders
    _case("estimate-config-missing", "estimate --config {d}/nope.yaml --out {d}/o", "nope.yaml"),
    _case("estimate-config-is-dir", "estimate --config {d} --out {d}/o", "directory"),
    _case("sweep-matrix-missing", "sweep {d}/nope.yaml --out {d}/o", "nope.yaml"),
    _case("cost-scenario-missing", "cost {d}/nope.yaml --out {d}/o", "nope.yaml"),
    _case("catalog-missing", "catalog --catalog {d}/nope.yaml", "nope.yaml"),
    _case("run-dataset-missing", "run --model tiny --dataset {d}/nope.jsonl --out {d}/o", "nope.jsonl"),
    _case("calibrate-missing", "calibrate {d}/nope --out {d}/o", "nope"),
    _case("calibrate-empty-folder", "calibrate {d}/results --out {d}/o", "no run records", {"results/x.txt": "x"}),
    _case("report-missing", "report {d}/nope --out {d}/o", "nope"),
    _case("report-not-a-folder", "report {d}/f.txt --out {d}/o", "f.txt", {"f.txt": "x"}),
    # --- spec flags: wrong types, out of range, unknown names, unicode, huge
    _case("flag-rank-not-int", "estimate --model tiny --rank abc --out {d}/o", "--rank"),
    _case("flag-rank-zero", "estimate --model tiny --rank 0 --out {d}/o", "rank"),
    _case("flag-rank-negative", "estimate --model tiny --rank -8 --out {d}/o", "rank"),
    _case("flag-rank-huge", "estimate --model tiny --rank 99999999999999999999999 --out {d}/o", "rank"),
    _case("flag-bits", "estimate --model tiny --bits 3 --out {d}/o", "bits"),
    _case("flag-method", "estimate --model tiny --method lorax --out {d}/o", "method"),
    _case("flag-qlora-16", "estimate --model tiny --method qlora --bits 16 --out {d}/o", "bits"),
    _case("flag-alpha-nan", "estimate --model tiny --alpha nan --out {d}/o", "alpha"),
    _case("flag-alpha-inf", "estimate --model tiny --alpha inf --out {d}/o", "alpha"),
    _case("flag-dropout", "estimate --model tiny --dropout 1.5 --out {d}/o", "dropout"),
    _case("flag-lr-zero", "run --model tiny --lr 0 --out {d}/o", "learning_rate"),
    _case("flag-seq-len-huge", "estimate --model tiny --seq-len 100000000000 --out {d}/o", "seq_len"),
    _case("flag-batch-zero", "estimate --model tiny --batch-size 0 --out {d}/o", "micro_batch"),
    _case("flag-grad-accum", "estimate --model tiny --grad-accum -1 --out {d}/o", "grad_accum"),
    _case("flag-targets-empty", "estimate --model tiny --targets , --out {d}/o", "targets"),
    _case("flag-targets-unknown", "estimate --model tiny --targets nope_proj --out {d}/o", "nope_proj"),
    _case("flag-optimizer", "estimate --model tiny --optimizer sgd --out {d}/o", "optimizer"),
    _case("flag-parallelism", "estimate --model tiny --parallelism fsdp --out {d}/o", "parallelism"),
    _case("flag-single-many-gpus", "estimate --model tiny --gpus 4 --parallelism single --out {d}/o", "single"),
    _case("flag-gpus-zero", "estimate --model tiny --gpus 0 --out {d}/o", "count"),
    _case("flag-gpu-unknown", "estimate --model tiny --gpu TPUv9 --out {d}/o", "TPUv9"),
    _case("flag-gpu-unicode", "estimate --model tiny --gpu Н100🚀 --out {d}/o", "Н100"),
    _case("flag-model-unknown", "estimate --model llama-9000 --out {d}/o", "llama-9000"),
    _case("flag-model-unicode", "estimate --model модель-🚀 --out {d}/o", "модель"),
    _case("flag-model-traversal", "estimate --model ../../../../etc --out {d}/o", "etc"),
    _case("flag-model-missing", "estimate --rank 8 --out {d}/o", "no model given"),
    _case("flag-unknown-option", "estimate --model tiny --frobnicate 3 --out {d}/o", "frobnicate"),
    _case("flag-engine", "estimate --model tiny --engine magic --out {d}/o", "--engine"),
    _case("flag-device", "estimate --model tiny --device tpu --out {d}/o", "--device"),
    _case("flag-tokens-negative", "estimate --model tiny --gpu A5000 --tokens -5 --out {d}/o", "tokens"),
    _case("flag-tokens-no-gpu", "estimate --model tiny --engine none --tokens 1000 --out {d}/o", "gpu"),
    # --- lorabench YAML
    _case(
        "yaml-unknown-field", "estimate --config {d}/s.yaml --out {d}/o", "rnak", {"s.yaml": TINY_SPEC + "rnak: 8\n"}
    ),
    _case("yaml-rank-string", "estimate --config {d}/s.yaml --out {d}/o", "rank", {"s.yaml": TINY_SPEC + "rank: x\n"}),
    _case("yaml-rank-list", "estimate --config {d}/s.yaml --out {d}/o", "rank", {"s.yaml": TINY_SPEC + "rank: [8]\n"}),
    _case("yaml-rank-bool", "estimate --config {d}/s.yaml --out {d}/o", "rank", {"s.yaml": TINY_SPEC + "rank: true\n"}),
    _case("yaml-rank-float", "estimate --config {d}/s.yaml --out {d}/o", "rank", {"s.yaml": TINY_SPEC + "rank: 8.5\n"}),
    _case(
        "yaml-rank-huge", "estimate --config {d}/s.yaml --out {d}/o", "rank", {"s.yaml": TINY_SPEC + "rank: 1e400\n"}
    ),
    _case("yaml-model-null", "estimate --config {d}/s.yaml --out {d}/o", "model", {"s.yaml": "model: null\n"}),
    _case("yaml-model-int", "estimate --config {d}/s.yaml --out {d}/o", "model", {"s.yaml": "model: 7\n"}),
    _case("yaml-model-map", "estimate --config {d}/s.yaml --out {d}/o", "model", {"s.yaml": "model: {a: 1}\n"}),
    _case(
        "yaml-hardware-str",
        "estimate --config {d}/s.yaml --out {d}/o",
        "hardware",
        {"s.yaml": TINY_SPEC + "hardware: 0xA5000\n"},
    ),
    _case(
        "yaml-hardware-list",
        "estimate --config {d}/s.yaml --out {d}/o",
        "hardware",
        {"s.yaml": TINY_SPEC + "hardware: [1, 2]\n"},
    ),
    _case(
        "yaml-targets-int",
        "estimate --config {d}/s.yaml --out {d}/o",
        "targets",
        {"s.yaml": TINY_SPEC + "targets: 5\n"},
    ),
    _case(
        "yaml-targets-nested",
        "estimate --config {d}/s.yaml --out {d}/o",
        "targets",
        {"s.yaml": TINY_SPEC + "targets: [[q_proj]]\n"},
    ),
    _case(
        "yaml-python-tag",
        "estimate --config {d}/s.yaml --out {d}/o",
        "s.yaml",
        {"s.yaml": "model: !!python/object/apply:os.system ['echo pwned']\n"},
    ),
    _case(
        "yaml-huge-file",
        "estimate --config {d}/s.yaml --out {d}/o",
        "4 MiB",
        {"s.yaml": TINY_SPEC + "# " + "x" * (5 * 2**20) + "\n"},
    ),
    _case("yaml-unknown-kind", "estimate --config {d}/s.yaml --out {d}/o", "cannot tell", {"s.yaml": "foo: 1\n"}),
    # --- Axolotl YAML
    _case("axolotl-no-base", "estimate --config {d}/a.yml --out {d}/o", "base_model", {"a.yml": "adapter: lora\n"}),
    _case(
        "axolotl-adapter",
        "estimate --config {d}/a.yml --out {d}/o",
        "adapter",
        {"a.yml": "base_model: tiny\nadapter: ia3\n"},
    ),
    _case(
        "axolotl-both-bits",
        "estimate --config {d}/a.yml --out {d}/o",
        "load_in_8bit",
        {"a.yml": "base_model: tiny\nload_in_8bit: true\nload_in_4bit: true\n"},
    ),
    _case(
        "axolotl-lora-r-str",
        "estimate --config {d}/a.yml --out {d}/o",
        "rank",
        {"a.yml": "base_model: tiny\nadapter: lora\nlora_r: eight\n"},
    ),
    _case(
        "axolotl-optimizer",
        "estimate --config {d}/a.yml --out {d}/o",
        "optimizer",
        {"a.yml": "base_model: tiny\nadapter: lora\noptimizer: lion\n"},
    ),
    _case(
        "axolotl-optimizer-list",
        "estimate --config {d}/a.yml --out {d}/o",
        "optimizer",
        {"a.yml": "base_model: tiny\nadapter: lora\noptimizer: [adamw_torch]\n"},
    ),
    _case(
        "axolotl-deepspeed",
        "estimate --config {d}/a.yml --out {d}/o",
        "deepspeed",
        {"a.yml": "base_model: tiny\nadapter: lora\ndeepspeed: ds.json\n"},
    ),
    _case(
        "axolotl-base-model-list",
        "estimate --config {d}/a.yml --out {d}/o",
        "model",
        {"a.yml": "base_model: [tiny]\nadapter: lora\n"},
    ),
    _case(
        "axolotl-seq-len-neg",
        "estimate --config {d}/a.yml --out {d}/o",
        "seq_len",
        {"a.yml": "base_model: tiny\nadapter: lora\nsequence_len: -1\n"},
    ),
    # --- PEFT adapter_config.json
    _case(
        "peft-type",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "peft_type",
        {"adapter_config.json": '{"peft_type": "IA3", "base_model_name_or_path": "tiny"}'},
    ),
    _case(
        "peft-no-base",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "base_model_name_or_path",
        {"adapter_config.json": '{"peft_type": "LORA", "r": 8, "target_modules": ["q_proj"]}'},
    ),
    _case(
        "peft-r-string",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "rank",
        {"adapter_config.json": '{"base_model_name_or_path": "tiny", "r": "8x", "target_modules": ["q_proj"]}'},
    ),
    _case(
        "peft-regex-targets",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "invalid regular expression",
        {"adapter_config.json": '{"base_model_name_or_path": "tiny", "r": 8, "target_modules": "layers.(proj"}'},
    ),
    _case(
        "peft-dora-rslora",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "use_dora",
        {
            "adapter_config.json": '{"base_model_name_or_path": "tiny", "r": 8, "target_modules": ["q_proj"], '
            '"use_dora": true, "use_rslora": true}'
        },
    ),
    _case(
        "peft-malformed",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "line 1",
        {"adapter_config.json": '{"r": 8,'},
    ),
    _case(
        "peft-array",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "mapping",
        {"adapter_config.json": "[1, 2]"},
    ),
    _case(
        "peft-nan",
        "estimate --config {d}/adapter_config.json --out {d}/o",
        "alpha",
        {
            "adapter_config.json": '{"base_model_name_or_path": "tiny", "r": 8, "target_modules": ["q_proj"], '
            '"lora_alpha": NaN}'
        },
    ),
    # --- JSONL datasets
    _case(
        "jsonl-bad-line",
        "run --model tiny --dataset {d}/d.jsonl --out {d}/o",
        "d.jsonl:2",
        {"d.jsonl": GOOD_JSONL + "{oops\n"},
    ),
    _case(
        "jsonl-missing-field",
        "run --model tiny --dataset {d}/d.jsonl --out {d}/o",
        "d.jsonl:1",
        {"d.jsonl": '{"context": "a"}\n'},
    ),
    _case(
        "jsonl-wrong-type",
        "run --model tiny --dataset {d}/d.jsonl --out {d}/o",
        "d.jsonl:1",
        {"d.jsonl": '{"context": "a", "target": 5}\n'},
    ),
    _case(
        "jsonl-array-line",
        "run --model tiny --dataset {d}/d.jsonl --out {d}/o",
        "d.jsonl:1",
        {"d.jsonl": '["context", "target"]\n'},
    ),
    _case(
        "jsonl-bad-utf8",
        "run --model tiny --dataset {d}/d.jsonl --out {d}/o",
        "UTF-8",
        {"d.jsonl": GOOD_JSONL.encode() + b'{"context": "\xff", "target": "b"}\n'},
    ),
    _case(
        "jsonl-deep-nesting",
        "run --model tiny --dataset {d}/d.jsonl --out {d}/o",
        "d.jsonl:1",
        {"d.jsonl": "[" * 100_000 + "]" * 100_000 + "\n"},
    ),
    _case(
        "jsonl-huge-number",
        "run --model tiny --dataset {d}/d.jsonl --out {d}/o",
        "d.jsonl:1",
        {"d.jsonl": '{"context": "a", "target": ' + "9" * 5000 + "}\n"},
    ),
    _case("synthetic-unknown", "run --model tiny --dataset synthetic:poetry --out {d}/o", "poetry"),
    _case(
        "data-bad-chat-record",
        "data {d}/c.jsonl --model tiny --out {d}/o.json",
        "c.jsonl:2: messages[0]: missing role",
        {
            "c.jsonl": '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
            '{"messages": [{"content": "hi"}]}\n'
        },
        absent=("o.json",),
    ),
    # --- run options
    _case("run-nproc-zero", "run --model tiny --nproc 0 --out {d}/o", "--nproc"),
    _case("run-examples-zero", "run --model tiny --examples 0 --out {d}/o", "--examples"),
    _case("run-max-steps-zero", "run --model tiny --max-steps 0 --out {d}/o", "--max-steps"),
    _case("run-warmup", "run --model tiny --max-steps 2 --warmup-steps 2 --out {d}/o", "warmup_steps"),
    _case("run-batching", "run --model tiny --batching random --out {d}/o", "--batching"),
    _case("run-usd-negative", "run --model tiny --usd-per-gpu-hour -1 --out {d}/o", "--usd-per-gpu-hour"),
    # --- catalogs
    _case(
        "catalog-no-source",
        "catalog --catalog {d}/c.yaml",
        "source",
        {"c.yaml": GOOD_CATALOG.replace(', source: "https://x.org"', "")},
    ),
    _case(
        "catalog-bad-url",
        "catalog --catalog {d}/c.yaml",
        "source",
        {"c.yaml": GOOD_CATALOG.replace("https://x.org", "javascript:alert(1)")},
    ),
    _case(
        "catalog-serving-price-bad-source",
        "catalog --catalog {d}/c.yaml",
        "infer_source",
        {
            "c.yaml": "schema_version: 1\nprovider: me\nservices:\n  - {id: ft, display_name: FT, "
            'train_usd_per_mtok: 1, infer_output_usd_per_mtok: 2, infer_source: "file:///etc/passwd", '
            'prices_checked: "2026-01-01", source: "https://x.org"}\n'
        },
    ),
    _case(
        "catalog-serving-price-negative",
        "catalog --catalog {d}/c.yaml",
        "infer_output_usd_per_mtok",
        {
            "c.yaml": "schema_version: 1\nprovider: me\nservices:\n  - {id: ft, display_name: FT, "
            'train_usd_per_mtok: 1, infer_output_usd_per_mtok: -2, prices_checked: "2026-01-01", '
            'source: "https://x.org"}\n'
        },
    ),
    _case(
        "catalog-negative-price",
        "catalog --catalog {d}/c.yaml",
        "usd_per_gpu_hour",
        {"c.yaml": GOOD_CATALOG.replace("0.3", "-0.3")},
    ),
    _case(
        "catalog-price-string",
        "catalog --catalog {d}/c.yaml",
        "usd_per_gpu_hour",
        {"c.yaml": GOOD_CATALOG.replace("0.3", "cheap")},
    ),
    _case(
        "catalog-bad-date",
        "catalog --catalog {d}/c.yaml",
        "prices_checked",
        {"c.yaml": GOOD_CATALOG.replace("2026-01-01", "yesterday")},
    ),
    _case(
        "catalog-unknown-gpu",
        "catalog --catalog {d}/c.yaml",
        "A9999",
        {"c.yaml": GOOD_CATALOG.replace("gpu: A5000", "gpu: A9999")},
    ),
    _case(
        "catalog-bad-id",
        "catalog --catalog {d}/c.yaml",
        "id",
        {"c.yaml": GOOD_CATALOG.replace("me-a5000", "../../etc")},
    ),
    _case(
        "catalog-version",
        "catalog --catalog {d}/c.yaml",
        "schema_version",
        {"c.yaml": GOOD_CATALOG.replace("schema_version: 1", "schema_version: 9")},
    ),
    _case(
        "catalog-entries-map",
        "catalog --catalog {d}/c.yaml",
        "gpu_rates",
        {"c.yaml": "schema_version: 1\nprovider: me\ngpu_rates: {a: 1}\n"},
    ),
    _case(
        "catalog-entry-scalar",
        "catalog --catalog {d}/c.yaml",
        "gpu_rates[0]",
        {"c.yaml": "schema_version: 1\nprovider: me\ngpu_rates: [5]\n"},
    ),
    _case(
        "catalog-ref-dangling",
        "catalog --catalog {d}/c.yaml",
        "rate_id",
        {
            "c.yaml": "schema_version: 1\nprovider: me\nreferences:\n  - {id: r, display_name: R, kind: project, "
            'gpus: 1, time_s: 5, rate_id: nope, prices_checked: "2026-01-01", source: "https://x.org"}\n'
        },
    ),
    # --- sweep matrices
    _case(
        "matrix-axis-scalar",
        "sweep {d}/m.yaml --out {d}/o",
        "non-empty list",
        {"m.yaml": "base: {model: tiny}\nmatrix: {rank: 8}\n"},
    ),
    _case(
        "matrix-axis-empty",
        "sweep {d}/m.yaml --out {d}/o",
        "non-empty list",
        {"m.yaml": "base: {model: tiny}\nmatrix: {rank: []}\n"},
    ),
    _case(
        "matrix-bad-value",
        "sweep {d}/m.yaml --out {d}/o",
        "rank",
        {"m.yaml": "base: {model: tiny}\nmatrix: {rank: [4, -1]}\n"},
    ),
    _case(
        "matrix-unknown-key",
        "sweep {d}/m.yaml --out {d}/o",
        "unknown key",
        {"m.yaml": "base: {model: tiny}\nmatrx: {rank: [4]}\n"},
    ),
    _case(
        "matrix-base-list", "sweep {d}/m.yaml --out {d}/o", "base", {"m.yaml": "base: [tiny]\nmatrix: {rank: [4]}\n"}
    ),
    _case(
        "matrix-options-out",
        "sweep {d}/m.yaml --out {d}/o",
        "options.out",
        {"m.yaml": "base: {model: tiny}\noptions: {out: /tmp/x}\n"},
    ),
    _case(
        "matrix-options-unknown",
        "sweep {d}/m.yaml --out {d}/o",
        "options.stpes",
        {"m.yaml": "base: {model: tiny}\noptions: {stpes: 3}\n"},
    ),
    _case(
        "matrix-options-seed-str",
        "sweep {d}/m.yaml --out {d}/o",
        "options.seed",
        {"m.yaml": "base: {model: tiny}\noptions: {seed: abc}\n"},
    ),
    _case(
        "matrix-options-date",
        "sweep {d}/m.yaml --out {d}/o",
        "options.dataset",
        {"m.yaml": "base: {model: tiny}\noptions: {dataset: 2024-01-01}\n"},
    ),
    _case(
        "matrix-options-int-key",
        "sweep {d}/m.yaml --out {d}/o",
        "options.1",
        {"m.yaml": "base: {model: tiny}\noptions: {1: 2, a: 3}\n"},
    ),
    _case(
        "matrix-exclude-scalar",
        "sweep {d}/m.yaml --out {d}/o",
        "exclude",
        {"m.yaml": "base: {model: tiny}\nmatrix: {rank: [4]}\nexclude: [5]\n"},
    ),
    _case(
        "matrix-exclude-not-an-axis",
        "sweep {d}/m.yaml --out {d}/o",
        "exclude[0] names bits, not a matrix axis",
        {"m.yaml": "base: {model: tiny}\nmatrix: {rank: [4, 8]}\nexclude: [{bits: 4}]\n"},
    ),
    _case(
        "matrix-non-string-keys",
        "sweep {d}/m.yaml --out {d}/o",
        "unknown key(s) 3, None",
        {"m.yaml": "null: 1\n3: x\nbase: {model: tiny}\n"},
    ),
    _case(
        "matrix-nothing-left",
        "sweep {d}/m.yaml --out {d}/o",
        "no runnable",
        {"m.yaml": "base: {model: tiny}\nmatrix: {rank: [4]}\nexclude: [{rank: 4}]\n"},
    ),
    _case(
        "matrix-explosion",
        "sweep {d}/m.yaml --out {d}/o",
        "combinations",
        {
            "m.yaml": "base: {model: tiny}\nmatrix:\n"
            + "".join(f"  a{i}: &a{i} [1,2,3,4,5,6,7,8,9,10]\n" for i in range(8))
        },
    ),
    _case(
        "matrix-synthetic-unknown",
        "sweep {d}/m.yaml --out {d}/o",
        "poetry",
        {"m.yaml": "base: {model: tiny}\noptions: {dataset: 'synthetic:poetry'}\n"},
    ),
    _case(
        "matrix-dataset-missing",
        "sweep {d}/m.yaml --out {d}/o",
        "nope.jsonl",
        {"m.yaml": "base: {model: tiny}\noptions: {dataset: '{d}/nope.jsonl'}\n"},
    ),
    _case("sweep-repeats", "sweep {d}/m.yaml --out {d}/o --repeats 0", "--repeats", {"m.yaml": GOOD_MATRIX}),
    _case("sweep-workers", "sweep {d}/m.yaml --out {d}/o --workers -2", "--workers", {"m.yaml": GOOD_MATRIX}),
    _case("sweep-timeout", "sweep {d}/m.yaml --out {d}/o --timeout-s -1", "--timeout-s", {"m.yaml": GOOD_MATRIX}),
    _case("sweep-timeout-nan", "sweep {d}/m.yaml --out {d}/o --timeout-s nan", "--timeout-s", {"m.yaml": GOOD_MATRIX}),
    # --- cost scenarios
    _case("scenario-no-dataset", "cost {d}/s.yaml --out {d}/o", "dataset", {"s.yaml": "services: []\n"}),
    _case(
        "scenario-tokens-and-path",
        "cost {d}/s.yaml --out {d}/o",
        "not both",
        {"s.yaml": "dataset: {tokens: 5, path: d.jsonl}\n"},
    ),
    _case(
        "scenario-tokens-negative",
        "cost {d}/s.yaml --out {d}/o",
        "dataset.tokens",
        {"s.yaml": "dataset: {tokens: -5}\n"},
    ),
    _case(
        "scenario-tokens-string",
        "cost {d}/s.yaml --out {d}/o",
        "dataset.tokens",
        {"s.yaml": "dataset: {tokens: many}\n"},
    ),
    _case(
        "scenario-unknown-service",
        "cost {d}/s.yaml --out {d}/o",
        "nope-service",
        {"s.yaml": "dataset: {tokens: 1000}\nservices: [nope-service]\n"},
    ),
    _case(
        "scenario-unknown-reference",
        "cost {d}/s.yaml --out {d}/o",
        "nope-ref",
        {"s.yaml": "dataset: {tokens: 1000}\nreferences: [nope-ref]\n"},
    ),
    _case(
        "scenario-hosted-two-sources",
        "cost {d}/s.yaml --out {d}/o",
        "exactly one",
        {"s.yaml": "dataset: {tokens: 1000}\nself_hosted: [{name: x, hours: 1, results: r, gpu: A5000}]\n"},
    ),
    _case(
        "scenario-hosted-no-gpu",
        "cost {d}/s.yaml --out {d}/o",
        "gpu",
        {"s.yaml": "dataset: {tokens: 1000}\nself_hosted: [{name: x, hours: 1}]\n"},
    ),
    _case(
        "scenario-hosted-unknown-gpu",
        "cost {d}/s.yaml --out {d}/o",
        "Z80",
        {"s.yaml": "dataset: {tokens: 1000}\nself_hosted: [{name: x, hours: 1, gpu: Z80}]\n"},
    ),
    _case(
        "scenario-hosted-results-missing",
        "cost {d}/s.yaml --out {d}/o",
        "nope",
        {"s.yaml": "dataset: {tokens: 1000}\nself_hosted: [{name: x, results: nope, gpu: A5000}]\n"},
    ),
    _case(
        "scenario-hosted-results-garbage",
        "cost {d}/s.yaml --out {d}/o",
        "result.json",
        {
            "s.yaml": "dataset: {tokens: 1000}\nself_hosted: [{name: x, results: r, gpu: A5000}]\n",
            "r/result.json": b"\x00\x01garbage",
        },
    ),
    _case(
        "scenario-hosted-spec-garbage",
        "cost {d}/s.yaml --out {d}/o",
        "spec.yaml",
        {
            "s.yaml": "dataset: {tokens: 1000}\nself_hosted: [{name: x, spec: spec.yaml, gpu: A5000}]\n",
            "spec.yaml": "model: tiny\nrank: -3\n",
        },
    ),
    _case(
        "scenario-tokens-huge",
        "cost {d}/s.yaml --out {d}/o",
        "dataset.tokens",
        {"s.yaml": "dataset: {tokens: 1" + "0" * 400 + "}\n"},
    ),
    _case(
        "scenario-epochs-huge",
        "cost {d}/s.yaml --out {d}/o",
        "epochs",
        {"s.yaml": "dataset: {tokens: 1000}\nepochs: 1e400\n"},
    ),
    _case(
        "scenario-dataset-tokenizer",
        "cost {d}/s.yaml --out {d}/o",
        "tok",
        {"s.yaml": "dataset: {path: d.jsonl, tokenizer: tok}\n", "d.jsonl": GOOD_JSONL},
    ),
    _case(
        "scenario-list-services",
        "cost {d}/s.yaml --out {d}/o",
        "services",
        {"s.yaml": "dataset: {tokens: 1000}\nservices: {a: 1}\n"},
    ),
    _case("cost-format", "cost {d}/s.yaml --format xls --out {d}/o", "--format", {"s.yaml": GOOD_SCENARIO}),
    # --- records read by calibrate and report
    _case(
        "report-malformed-record",
        "report {d}/r --out {d}/o",
        "result.json",
        {"r/result.json": '{"schema": "lorabench.run", "schema_version": 1, "spec": 5}'},
    ),
    _case(
        "report-future-version",
        "report {d}/r --out {d}/o",
        "version",
        {"r/result.json": '{"schema": "lorabench.run", "schema_version": 99}'},
    ),
    _case(
        "report-truncated-record",
        "report {d}/r --out {d}/o",
        "result.json",
        {"r/result.json": '{"schema": "lorabench.run", "schema_version": 1, "spec": {'},
        absent=("o", "r/report"),
    ),
    _case(
        "report-cost-garbage",
        "report {d}/r --out {d}/o",
        "c.json",
        {"r/c.json": '{"schema": "lorabench.cost", "schema_version": 1, "rows": [{"name": 5}]}'},
    ),
    _case(
        "report-nan-figure",
        "report {d}/r --out {d}/o",
        "r.json",
        {
            "r/r.json": '{"schema": "lorabench.cost", "schema_version": 1, "rows": [{"name": "x", "kind": "service", '
            '"cost_usd": NaN}]}'
        },
    ),
    _case(
        "calibrate-garbage-records",
        "calibrate {d}/r --out {d}/o",
        "none of",
        {"r/a/result.json": b"\xff\xfe", "r/b/result.json": '{"schema": "lorabench.run", "schema_version": 1}'},
    ),
    # --- the other commands
    _case("demo-steps", "demo --steps 1 --out {d}/o", "--steps"),
    _case("demo-engine", "demo --engine magic --out {d}/o", "--engine"),
    _case("fit-no-gpu", "fit --model tiny", "--gpu", absent=()),
    _case("fit-gpu-unknown", "fit --model tiny --gpu TPUv9", "TPUv9", absent=()),
    _case("fit-gpus-zero", "fit --model tiny --gpu A5000 --gpus 0", "count", absent=()),
    _case("fit-config-garbage", "fit --config {d}/s.yaml --gpu A5000", "s.yaml", {"s.yaml": b"\xff\x00"}, absent=()),
    _case("fit-rank", "fit --model tiny --gpu A5000 --rank -1", "rank", absent=()),
    # --- infer: grid values, adapters (missing, garbage, pickled, foreign), prompts
    _case("infer-batch-zero", "infer --model tiny --batch-sizes 0 --out {d}/o", "--batch-sizes"),
    _case("infer-batch-text", "infer --model tiny --batch-sizes one,2 --out {d}/o", "--batch-sizes"),
    _case("infer-batch-empty", "infer --model tiny --batch-sizes , --out {d}/o", "--batch-sizes"),
    _case("infer-prompt-negative", "infer --model tiny --prompt-lens -4 --out {d}/o", "--prompt-lens"),
    _case("infer-prompt-too-long", "infer --model tiny --prompt-lens 4096 --out {d}/o", "context"),
    _case("infer-new-tokens-zero", "infer --model tiny --max-new-tokens 0 --out {d}/o", "--max-new-tokens"),
    _case("infer-repeats-zero", "infer --model tiny --repeats 0 --out {d}/o", "--repeats"),
    _case("infer-variant-unknown", "infer --model tiny --variants fastest --out {d}/o", "--variants"),
    _case("infer-merged-no-adapter", "infer --model tiny --variants merged --out {d}/o", "adapter"),
    _case("infer-bits", "infer --model tiny --bits 3 --out {d}/o", "--bits"),
    _case("infer-order", "infer --model tiny --order random --out {d}/o", "--order"),
    _case("infer-popularity", "infer --model tiny --popularity viral --out {d}/o", "--popularity"),
    _case("infer-model-unknown", "infer --model llama-9000 --out {d}/o", "llama-9000"),
    _case("infer-adapter-missing", "infer --model tiny --adapter {d}/nope --out {d}/o", "nope"),
    _case("infer-adapter-no-config", "infer --model tiny --adapter {d}/a --out {d}/o", "a", {"a/x.txt": "x"}),
    _case(
        "infer-adapter-config-garbage",
        "infer --model tiny --adapter {d}/a --out {d}/o",
        "adapter_config.json",
        {"a/adapter_config.json": bytes(range(256))},
    ),
    _case(
        "infer-adapter-not-lora",
        "infer --model tiny --adapter {d}/a --out {d}/o",
        "peft_type",
        {"a/adapter_config.json": '{"peft_type": "PREFIX_TUNING"}'},
    ),
    _case(
        "infer-adapter-pickle-only",
        "infer --model tiny --adapter {d}/a --out {d}/o",
        "pickled weights are not loaded",
        {
            "a/adapter_config.json": LORA_CONFIG,
            "a/adapter_model.bin": b"not loaded",
        },
    ),
    _case(
        "infer-adapter-weights-garbage",
        "infer --model tiny --adapter {d}/a --out {d}/o",
        "adapter_model.safetensors",
        {
            "a/adapter_config.json": LORA_CONFIG,
            "a/adapter_model.safetensors": b"\x00" * 64,
        },
    ),
    _case("infer-prompts-missing", "infer --model tiny --prompts {d}/nope.jsonl --out {d}/o", "nope.jsonl"),
    _case(
        "infer-prompts-garbage",
        "infer --model tiny --prompts {d}/p.jsonl --out {d}/o",
        "p.jsonl",
        {"p.jsonl": bytes(range(256))},
    ),
    _case("models-extra-arg", "models extra", "extra", absent=()),
    _case("models-unknown-option", "models --yaml", "--yaml", absent=()),
    _case("unknown-command", "frobnicate", "frobnicate", absent=()),
]


# --- hardening round two: local model configs with absurd or wrong sizes, checked before anything is built
TINY_CONFIG = {
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 688,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 4096,
    "max_position_embeddings": 2048,
}
BAD_CONFIGS: dict[str, tuple[dict[str, object], str]] = {
    "layers-billion": ({"num_hidden_layers": 10**9}, "num_hidden_layers"),
    "layers-float": ({"num_hidden_layers": 4.0}, "num_hidden_layers"),
    "layers-string": ({"num_hidden_layers": "4"}, "num_hidden_layers"),
    "layers-zero": ({"num_hidden_layers": 0}, "num_hidden_layers"),
    "hidden-negative": ({"hidden_size": -256}, "hidden_size"),
    "hidden-huge": ({"hidden_size": 2**40}, "hidden_size"),
    "vocab-negative": ({"vocab_size": -1}, "vocab_size"),
    "vocab-bool": ({"vocab_size": True}, "vocab_size"),
    "heads-kv-not-dividing": ({"num_key_value_heads": 3}, "num_key_value_heads"),
    "intermediate-nan": ({"intermediate_size": float("nan")}, "intermediate_size"),
    "nested-text-config": ({"text_config": {"num_hidden_layers": -2}}, "text_config.num_hidden_layers"),
}
MODEL_CONFIG_COMMANDS = {
    "estimate": "estimate --model {d}/m --out {d}/o",
    "run": "run --model {d}/m --random-weights --out {d}/o",
    "infer": "infer --model {d}/m --random-weights --out {d}/o",
    "fit": "fit --model {d}/m --gpu A5000",
}
CASES += [
    _case(
        f"model-config-{name}-{command}",
        template,
        field,
        {"m/config.json": json.dumps({**TINY_CONFIG, **patch})},
        **({"absent": ()} if command == "fit" else {}),
    )
    for name, (patch, field) in BAD_CONFIGS.items()
    for command, template in MODEL_CONFIG_COMMANDS.items()
    if command == "estimate" or name in ("layers-billion", "layers-float", "hidden-negative", "vocab-negative")
]
CASES += [
    _case(
        "model-config-in-sweep-matrix",
        "sweep {d}/m.yaml --out {d}/o",
        "num_hidden_layers",
        {
            "m.yaml": "base: {model: '{d}/m'}\nmatrix: {rank: [4]}\n",
            "m/config.json": json.dumps({**TINY_CONFIG, "num_hidden_layers": 10**9}),
        },
    ),
    # --- sweep folders the filesystem cannot hold, and matrices too large to start without a word
    _case("sweep-out-name-too-long", "sweep {d}/m.yaml --out {d}/" + "x" * 300, "--out", {"m.yaml": GOOD_MATRIX}),
    _case(
        "sweep-out-nested-name-too-long",
        "sweep {d}/m.yaml --out {d}/a/" + "é" * 200 + "/b",
        "--out",
        {"m.yaml": GOOD_MATRIX},
    ),
    _case(
        "sweep-out-path-too-long",
        "sweep {d}/m.yaml --out {d}/" + "/".join(["y" * 200] * 21),
        "--out",
        {"m.yaml": GOOD_MATRIX},
        absent=(),
    ),
    _case(
        "sweep-over-1000-runs-without-yes",
        "sweep {d}/m.yaml --out {d}/o",
        "--yes",
        {
            "m.yaml": "base: {model: tiny}\nmatrix: {rank: [" + ", ".join(map(str, range(1, 34))) + "], "
            "micro_batch: [" + ", ".join(map(str, range(1, 32))) + "]}\noptions: {max_steps: 2, warmup_steps: 1}\n"
        },
        absent=("o/ledger.sqlite",),
    ),
    _case(
        "sweep-repeats-over-1000-without-yes",
        "sweep {d}/m.yaml --out {d}/o --repeats 1001",
        "--yes",
        {"m.yaml": GOOD_MATRIX},
        absent=("o/ledger.sqlite",),
    ),
]


def _materialise(case: Case, tmp_path: Path) -> list[str]:
    d = str(tmp_path)
    for name, content in case.files.items():
        path = tmp_path / name.replace("{d}/", "")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content.replace("{d}", d), "utf-8")
        else:
            path.write_bytes(content)
    return [arg.replace("{d}", d) for arg in case.argv]


def _check(case: Case, tmp_path: Path, code: int, out: str, err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}; stderr: {err[-1500:]}"
    assert "Traceback" not in err and "Traceback" not in out
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err[-1500:]}"
    assert lines[0].startswith("lorabench: error: ")
    assert case.expect.lower() in lines[0].lower(), f"{case.expect!r} not in {lines[0]!r}"
    for rel in case.absent:
        assert not (tmp_path / rel).exists(), f"{rel} was created"
    assert not [p for p in tmp_path.rglob("*.tmp")], "a temporary file was left behind"


# serve: refused before it binds a port
CASES += [
    _case("serve-port-out-of-range", "serve --port 70000", "--port"),
    _case("serve-timeout-zero", "serve --simulate-timeout 0", "--simulate-timeout"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _materialise(case, tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    _check(case, tmp_path, code, out, err)


SUBPROCESS_CASES = ["spec-yaml-binary", "matrix-bad-yaml", "jsonl-bad-line", "flag-rank-not-int", "catalog-bad-url"]


@pytest.mark.integration
@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_through_the_installed_command(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    argv = _materialise(case, tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "lorabench.cli.main", *argv], env=env, capture_output=True, text=True, timeout=120
    )
    _check(case, tmp_path, proc.returncode, proc.stdout, proc.stderr)


def test_the_table_covers_every_command() -> None:
    from lorabench.cli.main import app

    commands = {c.name for c in app.registered_commands}
    covered = {c.argv[0] for c in CASES}
    missing = commands - covered
    assert not missing, f"add bad-input rows for: {sorted(missing)}"
    print(json.dumps({"bad_input_cases": len(CASES)}))


# Output into a full device: /dev/full refuses every write with ENOSPC (a real one, not a mock).
FULL_OUTPUT = ["models", "estimate --model tiny --engine none --json", "catalog"]


@pytest.mark.integration
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("argv", FULL_OUTPUT)
def test_output_into_a_full_device_is_one_line_and_exit_74(argv: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "lorabench.cli.main", *argv.split()],
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 74, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-1500:]
    assert lines[0].startswith("lorabench: error: ") and "No space left on device" in lines[0]
