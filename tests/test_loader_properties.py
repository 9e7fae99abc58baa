"""Property tests on every loader: whatever the input, it loads or raises a LorabenchError, never another exception.

Inputs are random bytes, random text, and random JSON/YAML documents whose keys are mostly the loader's own field
names (so values of every type reach the validation of every field). ``EXAMPLES`` per property; the README quotes
the total.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorabench.cost.catalog import load_catalog
from lorabench.cost.scenario import load_scenario
from lorabench.data.jsonl import read_jsonl
from lorabench.errors import LorabenchError
from lorabench.measure.sweep import load_sweep
from lorabench.spec import RunSpec, load_spec, parse_spec

EXAMPLES = int(os.environ.get("LORABENCH_HYPOTHESIS_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SPEC_KEYS = [*RunSpec.model_fields, "gpu", "gpus"]
AXOLOTL_KEYS = [
    "base_model",
    "adapter",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "micro_batch_size",
    "sequence_len",
    "gradient_accumulation_steps",
    "num_epochs",
    "learning_rate",
    "load_in_8bit",
    "load_in_4bit",
    "peft_use_dora",
    "peft_use_rslora",
    "lora_target_linear",
    "lora_target_modules",
    "optimizer",
    "deepspeed",
    "gradient_checkpointing",
]
PEFT_KEYS = [
    "peft_type",
    "base_model_name_or_path",
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "use_dora",
    "use_rslora",
]
SCENARIO_KEYS = [
    "dataset",
    "epochs",
    "self_hosted",
    "services",
    "references",
    "calibration",
    "tokens",
    "path",
    "name",
    "hours",
    "gpu",
    "count",
    "usd_per_gpu_hour",
    "rate",
    "provider",
    "default_epoch_rows",
]
CATALOG_KEYS = [
    "schema_version",
    "provider",
    "gpu_rates",
    "services",
    "references",
    "id",
    "gpu",
    "usd_per_gpu_hour",
    "prices_checked",
    "source",
    "display_name",
    "kind",
    "train_usd_per_mtok",
    "rate_id",
]
MATRIX_KEYS = ["base", "matrix", "options", "exclude", *RunSpec.model_fields, "dataset", "max_steps", "seed"]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["tiny", "lora", "qlora", "all-linear", "A5000", "4xA5000", "synthetic:sentiment", "q_proj"])
)


def documents(keys: list[str]) -> st.SearchStrategy[Any]:
    """Nested mappings with mostly known keys and values of every JSON type."""
    key = st.sampled_from(keys) | st.text(max_size=8)
    return st.recursive(
        SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=6), max_leaves=20
    )


def blobs(keys: list[str]) -> st.SearchStrategy[bytes]:
    """Random bytes, random text, or a random document written as YAML or JSON."""
    as_yaml = documents(keys).map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode())
    as_json = documents(keys).map(lambda d: json.dumps(d).encode())
    return st.binary(max_size=300) | st.text(max_size=300).map(str.encode) | as_yaml | as_json


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _only_lorabench_errors(load: Callable[[], object]) -> None:
    try:
        load()
    except LorabenchError as exc:
        assert str(exc).strip()


@SETTINGS
@given(blob=blobs(SPEC_KEYS + AXOLOTL_KEYS + PEFT_KEYS))
def test_config_files(folder: Path, blob: bytes) -> None:
    for name in ("spec.yaml", "adapter_config.json"):
        (folder / name).write_bytes(blob)
        _only_lorabench_errors(lambda n=name: load_spec(folder / n))  # type: ignore[misc]


@SETTINGS
@given(doc=st.dictionaries(st.sampled_from(PEFT_KEYS), SCALARS | st.lists(SCALARS, max_size=3), max_size=8))
def test_adapter_configs(folder: Path, doc: dict[str, Any]) -> None:
    path = folder / "adapter_config.json"
    path.write_text(json.dumps(doc))
    _only_lorabench_errors(lambda: load_spec(path))


@SETTINGS
@given(doc=st.dictionaries(st.sampled_from(AXOLOTL_KEYS), SCALARS | st.lists(SCALARS, max_size=3), max_size=10))
def test_axolotl_configs(folder: Path, doc: dict[str, Any]) -> None:
    path = folder / "axolotl.yml"
    path.write_text(yaml.safe_dump({"base_model": "tiny", **doc}))
    _only_lorabench_errors(lambda: load_spec(path))


@SETTINGS
@given(
    raw=st.dictionaries(st.sampled_from(SPEC_KEYS), SCALARS | st.lists(SCALARS, max_size=3), max_size=10),
    overrides=st.dictionaries(st.sampled_from(SPEC_KEYS), SCALARS, max_size=4),
)
def test_spec_values_and_flags(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    _only_lorabench_errors(lambda: parse_spec(raw))
    _only_lorabench_errors(lambda: load_spec(None, {"model": "tiny", **overrides}))


@SETTINGS
@given(
    lines=st.lists(
        st.binary(max_size=60)
        | documents(["context", "target"]).map(lambda d: json.dumps(d).encode())
        | st.fixed_dictionaries({"context": SCALARS, "target": SCALARS}).map(lambda d: json.dumps(d).encode()),
        max_size=6,
    )
)
def test_jsonl_datasets(folder: Path, lines: list[bytes]) -> None:
    path = folder / "data.jsonl"
    path.write_bytes(b"\n".join(lines))
    _only_lorabench_errors(lambda: read_jsonl(path))


@SETTINGS
@given(blob=blobs(SCENARIO_KEYS))
def test_cost_scenarios(folder: Path, blob: bytes) -> None:
    path = folder / "scenario.yaml"
    path.write_bytes(blob)
    _only_lorabench_errors(lambda: load_scenario(path))


@SETTINGS
@given(blob=blobs(CATALOG_KEYS))
def test_catalogs(folder: Path, blob: bytes) -> None:
    path = folder / "prices.yaml"
    path.write_bytes(blob)
    _only_lorabench_errors(lambda: load_catalog([path]))


@SETTINGS
@given(blob=blobs(MATRIX_KEYS))
def test_sweep_matrices(folder: Path, blob: bytes) -> None:
    path = folder / "matrix.yaml"
    path.write_bytes(blob)
    _only_lorabench_errors(lambda: load_sweep(path, folder / "out"))
    assert not (folder / "out").exists()  # expansion writes nothing


PROPERTIES = 8


def test_examples_figure() -> None:
    print(json.dumps({"hypothesis_examples_max": PROPERTIES * EXAMPLES}))
