"""Real public example configs (tests/spec/data, sources in SOURCES.md) load into the right spec fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.errors import ConfigError
from lorabench.spec import LoadedSpec, load_spec_source, read_config_file
from lorabench.spec.source import NO_EFFECT, NOT_MODELLED

DATA = Path(__file__).parent / "data"


def _load(name: str) -> LoadedSpec:
    return load_spec_source(DATA / name)


def _ignored(loaded: LoadedSpec) -> dict[str, str]:
    return {k.key: k.category for k in loaded.ignored_keys}


@pytest.mark.parametrize("path", sorted((DATA / "axolotl").glob("*.y*ml")), ids=lambda p: p.name)
def test_every_axolotl_example_is_detected_and_loads(path: Path) -> None:
    assert read_config_file(path)[0] == "axolotl"
    loaded = load_spec_source(path)
    assert loaded.kind == "axolotl"
    assert loaded.spec.method in ("lora", "qlora", "rslora", "dora")


@pytest.mark.parametrize("path", sorted((DATA / "llamafactory").glob("*.yaml")), ids=lambda p: p.name)
def test_every_llamafactory_example_is_detected_and_loads(path: Path) -> None:
    assert read_config_file(path)[0] == "llamafactory"
    assert load_spec_source(path).kind == "llamafactory"


def test_axolotl_llama3_lora_8b() -> None:
    loaded = _load("axolotl/llama-3_lora-8b.yml")
    spec = loaded.spec
    assert spec.model == "NousResearch/Meta-Llama-3-8B"
    assert (spec.method, spec.bits, spec.rank, spec.alpha, spec.dropout) == ("lora", 8, 32, 16.0, 0.05)
    assert spec.target_list is None
    assert spec.modules_to_save == ("embed_tokens", "lm_head")
    assert (spec.micro_batch, spec.grad_accum, spec.seq_len, spec.epochs) == (2, 4, 4096, 4.0)
    assert spec.optimizer == "adamw_8bit"  # adamw_bnb_8bit
    assert spec.attention == "flash_attention_2"
    assert spec.grad_ckpt is True
    ignored = _ignored(loaded)
    assert ignored["sample_packing"] == NOT_MODELLED
    assert ignored["datasets"] == NOT_MODELLED
    assert "wandb_project" not in ignored  # null keys are unset in Axolotl too
    assert ignored["lr_scheduler"] == NO_EFFECT
    assert loaded.datasets[0].reference == "mhenrichsen/alpaca_2k_test"


def test_axolotl_fsdp_offload_70b() -> None:
    spec = _load("axolotl/llama-3_qlora-fsdp-70b.yaml").spec
    assert spec.model == "casperhansen/llama-3-70b-fp16"
    assert (spec.method, spec.bits) == ("qlora", 4)
    assert (spec.parallelism, spec.fsdp_offload) == ("fsdp_full_shard", True)
    assert spec.optimizer == "adamw_torch_fused"


def test_axolotl_qwen3_32b_offload_4bit_optimizer_cce() -> None:
    loaded = _load("axolotl/qwen3_32b-qlora.yaml")
    spec = loaded.spec
    assert (spec.grad_ckpt, spec.activation_offload) == (True, True)  # gradient_checkpointing: offload
    assert spec.optimizer == "adamw_4bit"  # adamw_torch_4bit
    assert spec.cross_entropy == "fused"  # CutCrossEntropyPlugin
    assert spec.dropout == 0.0  # Axolotl's default
    assert any("lora_dropout" in n for n in loaded.notes)
    ignored = _ignored(loaded)
    for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel"):
        assert ignored[key] == NOT_MODELLED


def test_axolotl_liger_rslora_fsdp() -> None:
    loaded = _load("axolotl/deepseek-v2_qlora-fsdp-2_5.yaml")
    spec = loaded.spec
    assert (spec.method, spec.bits, spec.rank) == ("rslora", 4, 256)
    assert spec.cross_entropy == "fused"  # liger_fused_linear_cross_entropy
    assert (spec.parallelism, spec.fsdp_offload) == ("fsdp_full_shard", True)
    assert _ignored(loaded)["liger_rms_norm"] == NOT_MODELLED


def test_axolotl_gpt_oss_activation_offloading_and_unknown_attention() -> None:
    loaded = _load("axolotl/gpt-oss_gpt-oss-20b-sft-lora-singlegpu.yaml")
    spec = loaded.spec
    assert (spec.grad_ckpt, spec.activation_offload) == (True, True)
    assert spec.optimizer == "adamw_8bit"  # adamw_torch_8bit, with a note
    assert spec.attention == "sdpa"
    ignored = _ignored(loaded)
    assert ignored["attn_implementation"] == NOT_MODELLED
    assert ignored["use_kernels"] == NOT_MODELLED
    assert ignored["experimental_skip_move_to_device"] == "not recognised"


def test_axolotl_mistral_both_target_keys() -> None:
    loaded = _load("axolotl/mistral_qlora.yml")
    assert loaded.spec.target_list is None
    assert _ignored(loaded)["lora_target_modules"] == NO_EFFECT
    assert loaded.spec.model == "mistralai/Mistral-7B-v0.1"


def test_llamafactory_deepspeed_z3_and_defaults() -> None:
    loaded = _load("llamafactory/train_lora_qwen3_lora_sft_ds3.yaml")
    spec = loaded.spec
    assert spec.model == "Qwen/Qwen3-4B-Instruct-2507"
    assert (spec.method, spec.bits, spec.rank, spec.alpha, spec.dropout) == ("lora", 16, 8, 16.0, 0.0)
    assert spec.target_list is None  # lora_target: all
    assert (spec.micro_batch, spec.grad_accum, spec.seq_len, spec.epochs) == (1, 2, 2048, 3.0)
    assert spec.learning_rate == 1e-4
    assert spec.grad_ckpt is True  # LLaMA-Factory checkpoints by default
    assert spec.parallelism == "zero3"  # from the name ds_z3_config.json
    ignored = _ignored(loaded)
    assert ignored["max_samples"] == NOT_MODELLED
    assert ignored["template"] == NO_EFFECT
    assert [d.reference for d in loaded.datasets] == ["identity", "alpaca_en_demo"]


def test_llamafactory_bnb_4bit_is_qlora() -> None:
    spec = _load("llamafactory/train_qlora_qwen3_lora_sft_otfq.yaml").spec
    assert (spec.method, spec.bits) == ("qlora", 4)


def test_llamafactory_v1_config() -> None:
    loaded = _load("llamafactory/v1_train_qlora_quantization.yaml")
    spec = loaded.spec
    assert spec.model == "Qwen/Qwen3-0.6B"
    assert (spec.method, spec.bits, spec.rank, spec.alpha, spec.dropout) == ("qlora", 4, 16, 32.0, 0.05)
    assert spec.parallelism == "fsdp_full_shard"
    assert _ignored(loaded)["kernel_config"] == NOT_MODELLED


@pytest.mark.parametrize(
    ("name", "model", "rank", "alpha", "targets"),
    [
        ("qwen2.5-7b-instruct_r16_7targets.json", "Qwen/Qwen2.5-7B-Instruct", 16, 32.0, 7),
        ("llama-3.2-3b_r8_qv.json", "meta-llama/Llama-3.2-3B", 8, 32.0, 2),
        ("unsloth_llama-3.2-3b-instruct-bnb-4bit_r16.json", "unsloth/llama-3.2-3b-instruct-bnb-4bit", 16, 16.0, 7),
        ("mistral-7b-v0.1-sharded_r16_lm_head.json", "Hugofernandez/Mistral-7B-v0.1-colab-sharded", 16, 16.0, 8),
    ],
)
def test_peft_adapter_configs(name: str, model: str, rank: int, alpha: float, targets: int) -> None:
    loaded = _load(f"peft/{name}")
    assert loaded.kind == "peft"
    assert (loaded.spec.model, loaded.spec.rank, loaded.spec.alpha) == (model, rank, alpha)
    assert len(loaded.spec.targets) == targets
    ignored = _ignored(loaded)
    assert "bias" not in ignored  # "none" is what lorabench models
    assert ignored["task_type"] == NO_EFFECT


def test_peft_layers_to_transform() -> None:
    spec = _load("peft/gemma-2-9b-it_r16_layers16-41.json").spec
    assert spec.layers_to_transform == tuple(range(16, 42))


def test_unknown_keys_are_listed_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ax.yml"
    path.write_text(
        "base_model: tiny\nadapter: lora\nlora_r: 8\nsample_packing: true\nmy_magic_flag: 3\nwandb_project: x\n"
        "sample_packing_eff_est: 0.9\ntorch_compile: false\n"
    )
    loaded = load_spec_source(path)
    ignored = _ignored(loaded)
    assert ignored == {
        "sample_packing": NOT_MODELLED,
        "my_magic_flag": "not recognised",
        "wandb_project": NO_EFFECT,
        "sample_packing_eff_est": NOT_MODELLED,
    }
    record = loaded.source_record()
    assert record["kind"] == "axolotl"
    assert {k["key"] for k in record["ignored_keys"]} == set(ignored)


def test_full_fine_tune_configs_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "fft.yml"
    path.write_text("base_model: tiny\nmicro_batch_size: 1\nsequence_len: 512\n")
    with pytest.raises(ConfigError, match=r"adapter: not set.*full fine-tuning"):
        load_spec_source(path)


def test_llamafactory_dataset_info_lookup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text('{"fin": {"file_name": "fin.jsonl"}}')
    path = tmp_path / "lf.yaml"
    path.write_text("model_name_or_path: tiny\nfinetuning_type: lora\ndataset: fin,alpaca_en_demo\n")
    loaded = load_spec_source(path)
    assert loaded.datasets[0].path == data / "fin.jsonl"
    assert loaded.datasets[1].path is None  # not registered in dataset_info.json


def test_accelerate_config_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fsdp_config.yaml"
    path.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nnum_processes: 2\n")
    with pytest.raises(ConfigError, match="accelerate launcher config"):
        load_spec_source(path)


def test_notes_for_what_a_file_cannot_say() -> None:
    unsloth = _load("peft/unsloth_llama-3.2-3b-instruct-bnb-4bit_r16.json")
    assert any("pre-quantized 4-bit upload" in n and "--bits 4" in n for n in unsloth.notes)
    assert not any("pre-quantized" in n for n in load_spec_source(unsloth.path, {"bits": 4}).notes)
    fsdp = _load("axolotl/qwen3_qlora-fsdp.yaml")
    assert any("does not say how many GPUs" in n for n in fsdp.notes)
    assert load_spec_source(fsdp.path, {"gpus": 4}).spec.hardware.count == 4
