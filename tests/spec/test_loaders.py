from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorabench.errors import ConfigError
from lorabench.spec import load_spec, read_config_file


def test_axolotl_example_from_finlora(finlora: Path) -> None:
    spec = load_spec(finlora / "axolotl_example.yml")
    assert spec.model == "NousResearch/Meta-Llama-3.1-8B-Instruct"
    assert (spec.method, spec.bits, spec.rank, spec.alpha, spec.dropout) == ("lora", 8, 8, 16.0, 0.05)
    assert set(spec.targets) == {"q_proj", "k_proj", "v_proj"}
    assert (spec.micro_batch, spec.grad_accum, spec.seq_len, spec.epochs) == (2, 4, 16384, 4.0)
    assert spec.optimizer == "adamw_8bit"
    assert spec.grad_ckpt is True
    assert spec.parallelism == "zero1"  # from deepspeed_configs/zero1.json's name


@pytest.mark.parametrize(
    ("name", "method", "alpha"),
    [
        ("ner_llama_3_1_8b_fp16_r8.json", "lora", 16.0),
        ("ner_llama_3_1_8B_8bits_r8_dora.json", "dora", 16.0),
        ("ner_llama_3_1_8b_8bits_r8_rslora.json", "rslora", 16.0),
        ("ner_llama_3_1_8b_8bits_r8.json", "lora", 32.0),
    ],
)
def test_peft_adapter_configs_from_finlora(finlora: Path, name: str, method: str, alpha: float) -> None:
    spec = load_spec(finlora / "adapters" / name)
    assert spec.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert spec.method == method
    assert spec.rank == 8
    assert spec.alpha == alpha
    assert spec.bits == 16  # an adapter config does not record the base's bits
    assert set(spec.targets) == {"q_proj", "k_proj", "v_proj"}


def test_flags_override_a_file(finlora: Path) -> None:
    spec = load_spec(
        finlora / "adapters" / "ner_llama_3_1_8b_8bits_r8.json",
        {"bits": 8, "rank": 4, "gpu": "A5000", "gpus": 4},
    )
    assert (spec.bits, spec.rank, spec.alpha) == (8, 4, 32.0)
    assert spec.hardware.gpu == "A5000"
    assert spec.hardware.count == 4
    assert spec.parallelism == "ddp"


def test_lorabench_yaml(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "model: llama-3.1-8b\nmethod: qlora\nrank: 4\ntargets: all-linear\nhardware: 4xA5000\n"
        "parallelism: zero2\ngrad_ckpt: true\n"
    )
    spec = load_spec(path)
    assert (spec.method, spec.bits, spec.rank, spec.alpha) == ("qlora", 4, 4, 8.0)
    assert spec.target_list is None
    assert spec.hardware.gpu == "A5000"
    assert spec.hardware.count == 4
    assert spec.parallelism == "zero2"


def test_flags_only() -> None:
    spec = load_spec(None, {"model": "tiny", "method": "rslora", "targets": "q_proj,o_proj", "rank": 16})
    assert spec.targets == ("q_proj", "o_proj")
    assert spec.alpha == 32.0


def test_method_qlora_flag_resets_file_bits(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model: tiny\nbits: 16\n")
    assert load_spec(path, {"method": "qlora"}).bits == 4


def test_axolotl_variants(tmp_path: Path) -> None:
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    path = tmp_path / "ax.yml"
    path.write_text(
        f"base_model: meta-llama/Llama-3.1-8B\nadapter: qlora\nload_in_4bit: true\npeft_use_dora: true\n"
        f"lora_r: 16\nlora_target_linear: true\noptimizer: paged_adamw_8bit\ndeepspeed: {ds.name}\n"
    )
    spec = load_spec(path)
    assert (spec.method, spec.bits, spec.rank) == ("dora", 4, 16)
    assert spec.target_list is None
    assert spec.optimizer == "paged_adamw_8bit"
    assert spec.parallelism == "zero3"  # read from the DeepSpeed file itself


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("model: [unclosed\n", "malformed YAML at line"),
        ('{"r": 8, "target_modules": ', "malformed JSON at line 1"),
        ("- a\n- b\n", "expected a mapping"),
        ("foo: 1\n", "cannot tell what kind of config"),
        ("model: tiny\nrank: 0\nbits: 5\n", "rank:"),
        ("model: tiny\nrnak: 8\n", "rnak: unknown field"),
        ("base_model: x\nadapter: ia3\n", "adapter:"),
        ("base_model: x\nload_in_8bit: true\nload_in_4bit: true\n", "choose one"),
        ("base_model: x\noptimizer: sgd\n", "optimizer:"),
        ("base_model: x\ndeepspeed: ds_config.json\n", "ZeRO stage"),
        ("adapter: lora\nlora_r: 8\n", "base_model: required"),
        ('{"peft_type": "IA3", "base_model_name_or_path": "x"}', "peft_type"),
        ('{"r": 8, "target_modules": ".*proj", "base_model_name_or_path": "x"}', "regular expression"),
        ('{"r": 8, "target_modules": ["q_proj"]}', "base_model_name_or_path"),
        (
            '{"r": 8, "target_modules": ["q_proj"], "base_model_name_or_path": "x", '
            '"use_dora": true, "use_rslora": true}',
            "one method per run",
        ),
    ],
)
def test_malformed_files_name_the_file_and_problem(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / ("bad.json" if content.lstrip().startswith("{") else "bad.yaml")
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message
    assert needle in message


def test_binary_and_missing_files(tmp_path: Path) -> None:
    binary = tmp_path / "garbage.yaml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_spec(binary)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_spec(tmp_path)


def test_no_model_anywhere() -> None:
    with pytest.raises(ConfigError, match="no model given"):
        load_spec(None, {"rank": 8})


def test_detection(finlora: Path) -> None:
    assert read_config_file(finlora / "axolotl_example.yml")[0] == "axolotl"
    assert read_config_file(finlora / "adapters" / "ner_llama_3_1_8b_fp16_r8.json")[0] == "peft"


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
)
_keys = st.sampled_from(
    [
        "model",
        "method",
        "bits",
        "rank",
        "alpha",
        "dropout",
        "targets",
        "micro_batch",
        "seq_len",
        "epochs",
        "optimizer",
        "grad_ckpt",
        "hardware",
        "parallelism",
        "base_model",
        "lora_r",
        "load_in_4bit",
        "adapter",
        "r",
        "target_modules",
        "peft_type",
        "use_dora",
        "junk",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_keys, _scalars, max_size=8))
def test_any_mapping_gives_a_spec_or_a_config_error(tmp_path: Path, data: dict[str, object]) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps(data))
    try:
        spec = load_spec(path)
    except ConfigError as exc:
        assert str(path) in str(exc) or "no model given" in str(exc) or "invalid run spec" in str(exc)
        assert "\n" not in str(exc)
    else:
        assert spec.rank > 0


@pytest.mark.parametrize(
    ("kind", "precision", "autocast"),
    [
        ("axolotl", "bf16: true", True),
        ("axolotl", "bf16: auto", True),
        ("axolotl", "fp16: true", True),
        ("axolotl", "bf16: false", False),
        ("llamafactory", "bf16: true", True),
        ("llamafactory", "", False),
    ],
)
def test_trainer_mixed_precision_becomes_autocast(tmp_path: Path, kind: str, precision: str, autocast: bool) -> None:
    path = tmp_path / "cfg.yml"
    if kind == "axolotl":
        path.write_text(f"base_model: meta-llama/Llama-3.1-8B\nadapter: lora\nlora_r: 8\n{precision}\n")
    else:
        path.write_text(
            "model_name_or_path: meta-llama/Llama-3.1-8B\nstage: sft\nfinetuning_type: lora\nlora_rank: 8\n"
            f"{precision}\n"
        )
    assert load_spec(path).autocast is autocast


def test_llamafactory_pure_bf16_is_modelled(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yml"
    path.write_text(
        "model_name_or_path: meta-llama/Llama-3.1-8B\nstage: sft\nfinetuning_type: lora\nlora_rank: 8\n"
        "pure_bf16: true\n"
    )
    from lorabench.spec import load_spec_source

    loaded = load_spec_source(path)
    assert loaded.spec.pure_bf16 is True and loaded.spec.autocast is False
    assert "pure_bf16" not in {item.key for item in loaded.ignored_keys}
