"""Mixture-of-experts models in every engine, 16- and 4-bit: a number or one clear line, never a traceback.

Small random configs of three real transformers architectures, written by the test: Mixtral (fused experts),
Qwen3-MoE (fused experts, no dense layers) and DeepSeek-V2 (a dense first layer, fused routed experts and
shared experts as plain linears).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lorabench.methods import FUSED_EXPERT_DROPOUT_NOTE
from lorabench.predict import account, estimate
from lorabench.spec import parse_spec

_COMMON: dict[str, Any] = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
}


@pytest.fixture(scope="module")
def moe_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import DeepseekV2Config, MixtralConfig, Qwen3MoeConfig

    root = tmp_path_factory.mktemp("moe")
    configs = {
        "mixtral": MixtralConfig(**_COMMON, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2),
        "qwen3moe": Qwen3MoeConfig(
            **_COMMON,
            num_key_value_heads=2,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            decoder_sparse_step=1,
            head_dim=16,
        ),
        "deepseek": DeepseekV2Config(
            **_COMMON,
            num_key_value_heads=4,
            moe_intermediate_size=32,
            n_routed_experts=4,
            n_shared_experts=1,
            num_experts_per_tok=2,
            first_k_dense_replace=1,
            kv_lora_rank=16,
            q_lora_rank=None,
            qk_rope_head_dim=8,
            v_head_dim=16,
            qk_nope_head_dim=8,
            n_group=1,
            topk_group=1,
        ),
    }
    dirs = {}
    for name, config in configs.items():
        config.save_pretrained(root / name)
        dirs[name] = root / name
    return dirs


def _spec(folder: Path, **raw: Any) -> Any:
    values: dict[str, Any] = {"model": str(folder), "targets": "all-linear", "micro_batch": 1, "seq_len": 16}
    values.update(raw)
    return parse_spec(values)


def _groups(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["group"]: g for g in record["module_groups"]}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mixtral", "qwen3moe", "deepseek"])
@pytest.mark.parametrize("bits", [16, 4])
@pytest.mark.parametrize("engine", ["none", "formula", "simulate"])
def test_every_engine_gives_a_number(moe_dirs: dict[str, Path], arch: str, bits: int, engine: str) -> None:
    spec = _spec(moe_dirs[arch], bits=bits, method="qlora" if bits == 4 else "lora")
    record = estimate(spec, engine=engine)  # type: ignore[arg-type]
    assert record["trainable_params"] > 0
    # all-linear reaches the fused experts: PEFT needs dropout 0 there, and the record says so
    assert record["effective_dropout"] == 0.0
    assert FUSED_EXPERT_DROPOUT_NOTE in record["notes"]
    assert _groups(record)["experts"]["adapted"] == "all"
    if engine != "none":
        assert record["single_gpu_peak_allocated_bytes"] > record["weights_bytes"]
        assert sum(record["breakdown"].values()) == record["peak_allocated_bytes"]
    if engine == "formula":
        assert record["memory_extrapolated"] is True
        assert any("fitted on" in note for note in record["memory_notes"])
        assert any("fused experts" in note for note in record["memory_notes"])


def test_formula_counts_the_folded_expert_weights(tmp_path: Path) -> None:
    from transformers import MixtralConfig

    from lorabench.predict.memory.formula import formula_memory
    from lorabench.predict.memory.simulation.engine import simulate

    config = MixtralConfig(
        **{**_COMMON, "hidden_size": 256, "intermediate_size": 704, "vocab_size": 512},
        num_key_value_heads=2,
        num_local_experts=8,
        num_experts_per_tok=2,
    )
    config.save_pretrained(tmp_path)
    # without checkpointing every layer keeps PEFT's folded copy of its expert stack for the backward
    spec = _spec(tmp_path, micro_batch=2, seq_len=64)
    attention_only = _spec(tmp_path, micro_batch=2, seq_len=64, targets="q_proj,k_proj,v_proj,o_proj")
    delta_formula = (
        formula_memory(spec).breakdown["activations"] - formula_memory(attention_only).breakdown["activations"]
    )
    delta_sim = simulate(spec).breakdown["activations"] - simulate(attention_only).breakdown["activations"]
    assert delta_sim > 0
    assert abs(delta_formula - delta_sim) <= 0.25 * delta_sim


def test_fused_experts_are_not_quantized_and_the_record_says_why(moe_dirs: dict[str, Path]) -> None:
    record = estimate(_spec(moe_dirs["mixtral"], method="qlora"))
    groups = _groups(record)
    assert groups["attention"]["quantization"] == "quantized (exact nn.Linear)"
    assert groups["experts"]["quantized_params_at_8_4_bits"] == 0
    assert "MixtralExperts" in groups["experts"]["quantization"]
    assert groups["router"]["quantized_params_at_8_4_bits"] == 0
    acc = account(_spec(moe_dirs["mixtral"]))
    # the experts dominate this model and stay 16-bit: far from a quarter of the 16-bit size
    assert acc.base_bytes(4) > 0.5 * acc.base_bytes(16)
    assert record["quantization_note"] is not None and "not 0.25x" in record["quantization_note"]


def test_mixtral_all_linear_adapts_the_routers_and_warns(moe_dirs: dict[str, Path]) -> None:
    acc = account(_spec(moe_dirs["mixtral"]))
    groups = {g.name: g for g in acc.module_groups}
    assert groups["router"].adapted == groups["router"].units == 2  # PEFT's conversion targets gate.weight
    assert any(w.startswith("router:") for w in acc.warnings)


def test_deepseek_shared_experts_skipped_by_all_linear_are_reported(moe_dirs: dict[str, Path]) -> None:
    # PEFT's transformers-5 conversion maps gate_proj/up_proj onto the fused experts and drops them elsewhere
    record = estimate(_spec(moe_dirs["deepseek"]))
    groups = _groups(record)
    assert groups["experts"]["adapted"] == "all"
    assert groups["shared experts"]["adapted"] != "all"
    assert any(w.startswith("shared experts:") for w in record["warnings"])


def test_attention_only_targets_keep_the_dropout(moe_dirs: dict[str, Path]) -> None:
    acc = account(_spec(moe_dirs["qwen3moe"], targets="q_proj,v_proj"))
    assert acc.dropout == 0.05
    assert acc.notes == ()
    groups = {g.name: g for g in acc.module_groups}
    assert groups["attention"].adapted == 4  # q and v in two layers
    assert groups["experts"].adapted == 0
    assert acc.warnings == ()  # the user chose attention only: nothing was skipped behind their back


def test_simulated_qlora_moe_counts_fp32_experts(moe_dirs: dict[str, Path]) -> None:
    from lorabench.predict.memory.simulation.engine import simulate

    lora = simulate(_spec(moe_dirs["mixtral"]))
    qlora = simulate(_spec(moe_dirs["mixtral"], method="qlora"))
    # k-bit preparation upcasts the (unquantized) fused experts to fp32: the 4-bit run holds more weight bytes
    assert qlora.breakdown["weights"] > lora.breakdown["weights"]


@pytest.mark.parametrize("engine", ["formula", "simulate"])
def test_cli_table_lists_groups_and_warns_on_stderr(
    moe_dirs: dict[str, Path], engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from lorabench.cli.main import main

    args = ["estimate", "--model", str(moe_dirs["deepseek"]), "--method", "qlora", "--targets", "all-linear"]
    code = main([*args, "--engine", engine, "--batch-size", "1", "--seq-len", "16"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "Traceback" not in out + err
    assert "Module groups" in out and "shared experts" in out
    assert "not 0.25x" in " ".join(out.split())
    assert "warning: shared experts:" in err
    if engine == "formula":
        assert "warning: formula extrapolates: model_type 'deepseek_v2'" in err


def test_cli_dora_on_fused_experts_is_one_line(moe_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from lorabench.cli.main import main

    code = main(["estimate", "--model", str(moe_dirs["mixtral"]), "--method", "dora", "--targets", "all-linear"])
    _, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "DoRA on fused experts" in err
