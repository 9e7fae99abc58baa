from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.errors import ModelError
from lorabench.models import architecture_catalog, resolve_model

REQUIRED = [
    "tiny",
    "llama-2-7b",
    "llama-2-13b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "mistral-7b-v0.3",
    "qwen2.5-7b",
    "gemma-2-9b",
]


def test_catalog_has_the_required_architectures() -> None:
    assert set(REQUIRED) <= set(architecture_catalog())
    for entry in architecture_catalog().values():
        assert entry.source


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("llama-3.1-8b", "llama-3.1-8b"),
        ("Llama-3.1-8B", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
        ("NousResearch/Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b"),
        ("meta-llama/Llama-2-7b-chat-hf", "llama-2-7b"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-v0.3"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
        ("google/gemma-2-9b-it", "gemma-2-9b"),
        ("someone/llama-3.2-1b-instruct", "llama-3.2-1b"),
    ],
)
def test_hub_ids_resolve_to_catalog_entries(ref: str, key: str) -> None:
    assert resolve_model(ref).key == key


def test_unknown_model_lists_what_is_known() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'gpt-17'.*llama-3\.1-8b"):
        resolve_model("gpt-17")


def test_local_directory_with_config(tmp_path: Path) -> None:
    from transformers import Qwen2Config

    Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=300,
    ).save_pretrained(tmp_path)
    resolved = resolve_model(str(tmp_path))
    assert resolved.local_dir == tmp_path
    assert resolved.config.model_type == "qwen2"


def test_local_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"has no config\.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="transformers cannot read it"):
        resolve_model(str(tmp_path))


# Total parameters as published on each model's Hugging Face page (safetensors parameter count), for the
# architecture built by transformers from the catalog entry on the meta device.
PUBLISHED_PARAMS = {
    "llama-3-8b": 8_030_261_248,
    "llama-3.3-70b": 70_553_706_496,
    "mistral-7b-v0.1": 7_241_732_096,
    "mixtral-8x7b": 46_702_792_704,
    "mistral-nemo-12b": 12_247_782_400,
    "qwen1.5-7b": 7_721_324_544,  # model.safetensors.index.json total_size 15,442,649,088 bytes / 2 (bf16)
    "qwen2-7b": 7_615_616_512,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-14b": 14_770_033_664,
    "qwen3-4b": 4_022_468_096,
    "qwen3-8b": 8_190_735_360,
    "qwen3-14b": 14_768_307_200,
    "qwen3-32b": 32_762_123_264,
    "qwen3-30b-a3b": 30_532_122_624,
    "gemma-2-2b": 2_614_341_888,
    "gemma-3-1b": 999_885_952,
    "phi-3-mini-4k": 3_821_079_552,
    "phi-4": 14_659_507_200,
    "phi-4-mini": 3_836_021_760,
    "smollm2-135m": 134_515_008,
    "smollm2-360m": 361_821_120,
    "smollm2-1.7b": 1_711_376_384,
    "olmo-2-7b": 7_298_617_344,
    "gpt-oss-20b": 20_914_757_184,
    "deepseek-v2-lite": 15_706_484_224,
}


@pytest.mark.parametrize(("key", "published"), sorted(PUBLISHED_PARAMS.items()))
def test_catalog_entries_build_with_the_published_parameter_count(key: str, published: int) -> None:
    from lorabench.models import build_meta_model

    entry = architecture_catalog()[key]
    assert entry.source.startswith("https://huggingface.co/") and entry.source.endswith("/config.json")
    model = build_meta_model(resolve_model(key).config)
    assert sum(p.numel() for p in model.parameters()) == published


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("NousResearch/Meta-Llama-3-8B", "llama-3-8b"),
        ("mistralai/Mistral-7B-v0.1", "mistral-7b-v0.1"),
        ("Qwen/Qwen2-7B", "qwen2-7b"),
        ("Qwen/Qwen3-8B", "qwen3-8b"),
        ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"),
        ("NousResearch/Llama-3.2-1B", "llama-3.2-1b"),
        ("casperhansen/llama-3-70b-fp16", "llama-3-70b"),
        ("mistralai/Mistral-Nemo-Instruct-2407", "mistral-nemo-12b"),
        ("Qwen/Qwen3-4B-Instruct-2507", "qwen3-4b"),
        ("google/gemma-3-1b-it", "gemma-3-1b"),
        ("microsoft/Phi-3-mini-4k-instruct", "phi-3-mini-4k"),
        ("HuggingFaceTB/SmolLM2-1.7B-Instruct", "smollm2-1.7b"),
        ("allenai/OLMo-2-1124-7B-Instruct", "olmo-2-7b"),
        ("openai/gpt-oss-20b", "gpt-oss-20b"),
        ("deepseek-ai/DeepSeek-V2-Lite-Chat", "deepseek-v2-lite"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
        ("Hugofernandez/Mistral-7B-v0.1-colab-sharded", "mistral-7b-v0.1"),
    ],
)
def test_mirrors_and_variants_resolve(ref: str, key: str) -> None:
    resolved = resolve_model(ref)
    assert resolved.key == key
    assert resolved.note is None


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("unsloth/llama-3-8b-bnb-4bit", "llama-3-8b"),
        ("unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit", "llama-3.1-8b"),
        ("unsloth/Qwen2.5-7B-Instruct-unsloth-bnb-4bit", "qwen2.5-7b"),
        ("unsloth/llama-3.2-3b-instruct-bnb-4bit", "llama-3.2-3b"),
        ("unsloth/mistral-7b-v0.3-bnb-4bit", "mistral-7b-v0.3"),
    ],
)
def test_pre_quantized_re_uploads_resolve_to_the_base_with_a_note(ref: str, key: str) -> None:
    resolved = resolve_model(ref)
    assert resolved.key == key
    assert resolved.note is not None and "pre-quantized 4-bit" in resolved.note and "--bits 4" in resolved.note


def _fake_cache(root: Path, repo: str, config: dict[str, object]) -> Path:
    import json

    folder = root / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(config))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    return snapshot


# The published https://huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json, as the hub cache holds it.
SMOLLM2_135M_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "hidden_act": "silu",
    "hidden_size": 576,
    "initializer_range": 0.041666666666666664,
    "intermediate_size": 1536,
    "is_llama_config": True,
    "max_position_embeddings": 8192,
    "model_type": "llama",
    "num_attention_heads": 9,
    "num_hidden_layers": 30,
    "num_key_value_heads": 3,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_interleaved": False,
    "rope_scaling": None,
    "rope_theta": 100000,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1",
    "use_cache": True,
    "vocab_size": 49152,
}


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME"])
def test_models_in_the_local_hf_cache_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    from lorabench.models import build_meta_model

    root = tmp_path / "hub" if variable == "HF_HOME" else tmp_path
    snapshot = _fake_cache(root, "someone/my-smol-finetune", SMOLLM2_135M_CONFIG)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv(variable, str(tmp_path))
    resolved = resolve_model("someone/my-smol-finetune")
    assert resolved.local_dir == snapshot
    assert resolved.note is not None and "Hugging Face cache" in resolved.note
    assert sum(p.numel() for p in build_meta_model(resolved.config).parameters()) == 134_515_008


def test_unknown_model_is_one_line_that_says_how_to_point_at_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelError) as err:
        resolve_model("acme/unheard-of-7b")
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path) in message
    assert "--local-dir DIR" in message and "pass that folder as the model" in message
