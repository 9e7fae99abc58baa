"""Translate an Axolotl YAML into RunSpec fields, listing every key that does not become one.

Keys are read with Axolotl's own defaults (``lora_dropout`` 0.0). A key set to null or an empty value is
unset in Axolotl too and is not listed; a not-modelled feature set to ``false`` is off, which is what
lorabench models, and is not listed either. Every other key is honoured or lands in ``ignored_keys``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lorabench.spec.common import apply_deepspeed, fsdp_parallelism, set_optimizer
from lorabench.spec.source import NO_EFFECT, NOT_MODELLED, UNRECOGNISED, DatasetHint, Translation

__all__ = ["from_axolotl"]

_ATTENTION = {"flash_attention_2": "flash_attention_2", "sdpa": "sdpa", "eager": "eager"}
_CCE_PLUGIN = "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"
_LIGER_PLUGIN = "axolotl.integrations.liger.LigerPlugin"

_NO_EFFECT_REASONS = {
    "logging, tracking, hub upload": (
        "wandb_",
        "swanlab_",
        "trackio_",
        "mlflow_",
        "comet_",
        "otel_",
        "hub_",
        "use_wandb",
        "use_swanlab",
        "use_tensorboard",
        "use_mlflow",
        "use_comet",
        "use_otel_metrics",
        "logging_steps",
        "project_name",
        "loss_watchdog_",
        "debug",
        "push_dataset_to_hub",
        "hf_use_auth_token",
    ),
    "checkpointing and output paths": (
        "output_dir",
        "save_",
        "saves_",
        "resume_from_checkpoint",
        "auto_resume_from_checkpoints",
        "lora_model_dir",
        "dataset_prepared_path",
        "merge_",
    ),
    "evaluation runs outside the training step (not part of the estimate)": (
        "eval_",
        "evals_",
        "evaluation_",
        "val_set_size",
        "do_causal_lm_eval",
        "early_stopping_patience",
        "test_datasets",
    ),
    "schedule and optimizer hyper-parameters (values, not state sizes)": (
        "lr_scheduler",
        "warmup_",
        "cosine_",
        "lr_",
        "weight_decay",
        "adam_beta1",
        "adam_beta2",
        "adam_eps",
        "adam_epsilon",
        "jagged_restart_",
        "max_grad_norm",
        "eta_min",
        "loraplus_",
        "seed",
        "optim_args",
    ),
    "tokenizer, prompt format and data preparation": (
        "tokenizer_",
        "chat_template",
        "special_tokens",
        "tokens",
        "eot_tokens",
        "train_on_inputs",
        "shuffle_merged_datasets",
        "dataset_",
        "skip_prepare_dataset",
        "remove_unused_columns",
        "default_system_message",
        "dataset_processes",
        "dataset_num_proc",
        "processor_type",
        "min_sample_len",
        "curriculum_sampling",
    ),
    "model loading and bookkeeping": (
        "model_type",
        "trust_remote_code",
        "strict",
        "revision_of_model",
        "base_model_config",
        "base_model_ignore_patterns",
        "low_cpu_mem_usage",
        "device_map",
        "local_rank",
        "ddp_find_unused_parameters",
        "ddp_timeout",
        "gradient_checkpointing_kwargs",
        "peft_layers_pattern",
        "lora_fan_in_fan_out",
        "peft_init_lora_weights",
        "tf32",
        "bfloat16",
        "float16",
        "torch_dtype",
        "torchdistx_path",
        "timeout",
        "seed",
        "gpu",
        "gpu_count",
        "node_count",
        "provider",
        "volumes",
        "branch",
        "secrets",
        "dockerfile_commands",
        "memory",
        "ray_",
        "use_ray",
    ),
}

_NOT_MODELLED_REASONS = {
    "sample_packing": "packs several samples into each sequence_len row: memory per step is that of full rows "
    "(what pad_to_max predicts), but no token is padding",
    "sample_packing_": "sample packing tuning",
    "eval_sample_packing": "packing of evaluation batches",
    "max_packed_sequence_len": "packing length",
    "pretraining_dataset": "streams a pre-training dataset",
    "group_by_length": "groups similar lengths: less padding per step (lorabench run --batching length_grouped)",
    "max_steps": "stops after this many optimizer steps; the estimate times whole epochs",
    "lora_target_parameters": "LoRA on raw parameters (e.g. MoE expert tensors, PEFT target_parameters)",
    "lora_mlp_kernel": "Axolotl's fused LoRA Triton kernels save activation memory",
    "lora_qkv_kernel": "Axolotl's fused LoRA Triton kernels save activation memory",
    "lora_o_kernel": "Axolotl's fused LoRA Triton kernels save activation memory",
    "liger_rms_norm": "Liger fused kernel: saves activation memory",
    "liger_rms_norm_gated": "Liger fused kernel: saves activation memory",
    "liger_glu_activation": "Liger fused kernel: saves activation memory",
    "liger_layer_norm": "Liger fused kernel: saves activation memory",
    "liger_rope": "Liger fused kernel: saves activation memory",
    "liger_cross_entropy": "Liger cross-entropy (not the fused linear one) still materialises the logits",
    "flash_attn_cross_entropy": "flash-attn cross-entropy kernel",
    "flash_attn_rms_norm": "flash-attn RMSNorm kernel",
    "flash_attn_fuse_mlp": "flash-attn fused MLP",
    "flash_attn_fuse_qkv": "flash-attn fused QKV",
    "xformers_attention": "xformers attention (estimated as sdpa)",
    "flex_attention": "flex attention (estimated as sdpa)",
    "s2_attention": "shifted-sparse attention (estimated as sdpa)",
    "flex_attn_compile_kwargs": "flex attention compile options",
    "use_kernels": "hub kernels replace layers",
    "use_scattermoe": "scatter-MoE kernels",
    "use_sonicmoe": "sonic-MoE kernels",
    "experts_implementation": "MoE expert implementation",
    "quantize_moe_experts": "quantized MoE experts",
    "torch_compile": "torch.compile changes activation memory and speed",
    "torch_compile_mode": "torch.compile mode",
    "unfrozen_parameters": "trains these base parameters in full beside the adapter",
    "peft_layer_replication": "replicates decoder layers (more adapters)",
    "peft_trainable_token_indices": "trains selected embedding rows",
    "gptq": "GPTQ-quantized base (lorabench models bitsandbytes 8/4-bit)",
    "gptq_": "GPTQ options",
    "bnb_config_kwargs": "bitsandbytes options beyond NF4 + double quantization",
    "model_quantization_config": "non-bitsandbytes quantization of the base",
    "model_quantization_config_kwargs": "non-bitsandbytes quantization options",
    "qat": "quantization-aware training",
    "fp8": "FP8 training",
    "rl": "preference / RL training (DPO, KTO, ORPO, GRPO) runs extra forward passes",
    "rl_beta": "preference training",
    "trl": "TRL trainer options (preference / RL training)",
    "orpo_alpha": "ORPO training",
    "kto_": "KTO training",
    "reward_model": "reward-model training",
    "process_reward_model": "process reward-model training",
    "relora": "ReLoRA restarts",
    "relora_": "ReLoRA options",
    "lisa_": "LISA layer-wise training",
    "context_parallel_size": "sequence (context) parallelism",
    "tensor_parallel_size": "tensor parallelism",
    "dp_shard_size": "FSDP2 shard group size",
    "dp_replicate_size": "HSDP replicate group size",
    "expert_parallel_": "expert parallelism",
    "tiled_mlp": "tiled MLP (ALST) saves activation memory",
    "resize_token_embeddings_to_32x": "pads the vocabulary to a multiple of 32",
    "embeddings_skip_upcast": "keeps embeddings in half precision",
    "lora_on_cpu": "keeps LoRA weights on the CPU",
    "qlora_sharded_model_loading": "sharded QLoRA loading",
    "fsdp_final_state_dict_type": "FSDP checkpoint format",
    "streaming": "streams the dataset",
    "diffusion": "diffusion-LM training",
    "vllm": "vLLM generation server (online RL)",
}


def _matches(key: str, names: tuple[str, ...] | dict[str, str]) -> str | None:
    """The entry of ``names`` that covers ``key``: equal, or a prefix ending in ``_``."""
    for name in names:
        if key == name or (name.endswith("_") and key.startswith(name)):
            return name
    return None


def _classify(out: Translation, key: str, value: Any) -> None:
    exact = _NOT_MODELLED_REASONS.get(key)
    prefix = None if exact is not None else _matches(key, _NOT_MODELLED_REASONS)
    if exact is not None or prefix is not None:
        if value is False:
            return  # the feature is off, which is what lorabench models
        out.ignore(key, value, NOT_MODELLED, exact or _NOT_MODELLED_REASONS[prefix or key])
        return
    for reason, names in _NO_EFFECT_REASONS.items():
        if _matches(key, names) is not None:
            out.ignore(key, value, NO_EFFECT, reason)
            return
    if value is False:
        return
    out.ignore(key, value, UNRECOGNISED, "not an Axolotl key lorabench knows; check whether it changes memory")


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict, tuple)) and len(value) == 0)


def from_axolotl(data: Mapping[str, Any], base_dir: Path | None = None) -> Translation:
    """Translate Axolotl's keys into RunSpec fields; every other key is listed with why it is not honoured.

    Args:
        data: The parsed Axolotl YAML.
        base_dir: The file's folder, for relative ``deepspeed`` and dataset paths.

    Returns:
        The translation; ``problems`` lists contradictory or unsupported values.
    """
    out = Translation()
    raw = out.raw
    rest = {str(k): v for k, v in data.items() if not _unset(v)}
    take = rest.pop

    if "base_model" not in rest:
        out.problems.append("base_model: required (the model to fine-tune)")
    else:
        raw["model"] = take("base_model")
    adapter = take("adapter", None)
    if adapter is None:
        out.problems.append(
            "adapter: not set, so Axolotl would fine-tune every weight (full fine-tuning); lorabench models "
            "adapter: lora or qlora"
        )
    elif adapter not in ("lora", "qlora"):
        out.problems.append(f"adapter: lorabench models 'lora' and 'qlora' adapters (got {adapter!r})")
    in8, in4 = bool(take("load_in_8bit", False)), bool(take("load_in_4bit", False))
    if in8 and in4:
        out.problems.append("load_in_8bit/load_in_4bit: both are true; choose one")
    if adapter == "qlora" or in4:
        raw["bits"] = 4
    elif in8:
        raw["bits"] = 8
    dora, rslora = bool(take("peft_use_dora", False)), bool(take("peft_use_rslora", False))
    if dora and rslora:
        out.problems.append("peft_use_dora/peft_use_rslora: both are true; lorabench models one method per run")
    raw["method"] = "dora" if dora else "rslora" if rslora else "qlora" if adapter == "qlora" else "lora"

    for src, dst in (
        ("lora_r", "rank"),
        ("lora_alpha", "alpha"),
        ("lora_dropout", "dropout"),
        ("micro_batch_size", "micro_batch"),
        ("gradient_accumulation_steps", "grad_accum"),
        ("sequence_len", "seq_len"),
        ("num_epochs", "epochs"),
        ("learning_rate", "learning_rate"),
        ("lora_modules_to_save", "modules_to_save"),
        ("peft_layers_to_transform", "layers_to_transform"),
        ("lora_rank_pattern", "rank_pattern"),
        ("lora_alpha_pattern", "alpha_pattern"),
    ):
        if src in rest:
            raw[dst] = take(src)
    if "dropout" not in raw:
        raw["dropout"] = 0.0
        out.notes.append("lora_dropout: not set; Axolotl's default 0.0 used")
    batch_size = take("batch_size", None)
    if batch_size is not None and "grad_accum" not in raw:
        micro = raw.get("micro_batch", 1)
        if isinstance(batch_size, int) and isinstance(micro, int) and micro > 0 and batch_size % micro == 0:
            raw["grad_accum"] = batch_size // micro
            out.notes.append(f"batch_size: {batch_size} read as gradient_accumulation_steps {batch_size // micro}")
        else:
            out.problems.append(f"batch_size: {batch_size!r} is not a multiple of micro_batch_size {micro!r}")

    _checkpointing(out, rest)
    targets_linear = take("lora_target_linear", None)
    modules = take("lora_target_modules", None)
    if targets_linear:
        raw["targets"] = "all-linear"
        if modules is not None:
            out.ignore(
                "lora_target_modules", modules, NO_EFFECT, "lora_target_linear: true already targets every linear"
            )
    elif modules is not None:
        raw["targets"] = [modules] if isinstance(modules, str) else modules

    set_optimizer(out, "optimizer", take("optimizer", None))
    dirs = (base_dir,) if base_dir is not None else ()
    apply_deepspeed(out, "deepspeed", take("deepspeed", None), dirs)
    _fsdp(out, rest)
    _attention(out, rest)
    _plugins(out, rest)
    _precision(out, rest)
    if rest.get("pad_to_sequence_len") is True:
        take("pad_to_sequence_len")  # every batch padded to sequence_len: what lorabench predicts
    if "datasets" in rest:
        _datasets(out, take("datasets"), base_dir)
    for key, value in rest.items():
        _classify(out, key, value)
    return out


def _checkpointing(out: Translation, rest: dict[str, Any]) -> None:
    ckpt = rest.pop("gradient_checkpointing", None)
    if ckpt in ("offload", "offload_disk"):
        out.raw["grad_ckpt"] = True
        out.raw["activation_offload"] = True
        if ckpt == "offload_disk":
            out.notes.append("gradient_checkpointing: offload_disk modelled as offload to CPU memory")
    elif ckpt is not None:
        out.raw["grad_ckpt"] = bool(ckpt)
    offload = rest.pop("activation_offloading", None)
    if offload not in (None, False):
        out.raw["activation_offload"] = True
        if offload is not True:
            out.notes.append(f"activation_offloading: {offload!r} modelled as offloading checkpoints to CPU memory")


def _fsdp(out: Translation, rest: dict[str, Any]) -> None:
    fsdp = rest.pop("fsdp", None)
    config = rest.pop("fsdp_config", None)
    version = rest.pop("fsdp_version", None)
    if fsdp is None and config is None:
        if version is not None:
            out.ignore("fsdp_version", version, NO_EFFECT, "no fsdp / fsdp_config given, so FSDP is off")
        return
    config = dict(config) if isinstance(config, Mapping) else {}
    version = version or config.pop("fsdp_version", None) or config.pop("version", None)
    offload = bool(config.pop("fsdp_offload_params", False) or config.pop("offload_params", False))
    strategy = config.pop("fsdp_sharding_strategy", None) or config.pop("sharding_strategy", None)
    reshard = config.pop("reshard_after_forward", config.pop("fsdp_reshard_after_forward", None))
    words = fsdp.split() if isinstance(fsdp, str) else [str(w) for w in fsdp] if isinstance(fsdp, list) else []
    if strategy is None:
        strategy = next((w for w in words if "shard" in w.lower()), None)
    if strategy is None:
        # FSDP2 (fsdp_version: 2) names no strategy: reshard_after_forward true (its default) is full sharding.
        strategy = "full_shard" if reshard in (None, True) else "shard_grad_op"
    elif reshard is False and "full_shard" in str(strategy).lower():
        strategy = "shard_grad_op"
    fsdp_parallelism(out, str(strategy), offload)
    checkpointing = [config.pop(k, False) for k in ("activation_checkpointing", "fsdp_activation_checkpointing")]
    if any(checkpointing):
        out.raw["grad_ckpt"] = True
    if "offload" in words:
        out.raw["fsdp_offload"] = True
    if version is not None and str(version) not in ("1", "2"):
        out.notes.append(f"fsdp_version: {version!r} read as FSDP")
    for key, value in config.items():
        if not _unset(value) and value is not False:
            out.ignore(f"fsdp_config.{key}", value, NO_EFFECT, "wrapping, state-dict and loading options of FSDP")


def _attention(out: Translation, rest: dict[str, Any]) -> None:
    impl = rest.pop("attn_implementation", None)
    flags = {name: rest.pop(name, None) for name in ("flash_attention", "sdp_attention", "eager_attention")}
    if impl is not None:
        if isinstance(impl, str) and impl in _ATTENTION:
            out.raw["attention"] = _ATTENTION[impl]
        else:
            out.ignore(
                "attn_implementation",
                impl,
                NOT_MODELLED,
                "only eager, sdpa and flash_attention_2 are modelled; estimated as sdpa",
            )
    on = [name for name, value in flags.items() if value]
    if len(on) > 1:
        out.problems.append(f"{'/'.join(on)}: more than one attention implementation is true; choose one")
    elif on and impl is None:
        out.raw["attention"] = {
            "flash_attention": "flash_attention_2",
            "sdp_attention": "sdpa",
            "eager_attention": "eager",
        }[on[0]]


def _plugins(out: Translation, rest: dict[str, Any]) -> None:
    plugins = rest.pop("plugins", None)
    names = [str(p) for p in plugins] if isinstance(plugins, list) else [str(plugins)] if plugins else []
    cce = rest.pop("cut_cross_entropy", None)
    flce = rest.pop("liger_fused_linear_cross_entropy", None)
    if _CCE_PLUGIN in names and cce is not False:
        out.raw["cross_entropy"] = "fused"
    elif cce:
        out.problems.append(f"cut_cross_entropy: true needs plugins: [{_CCE_PLUGIN}]")
    if flce:
        if _LIGER_PLUGIN in names:
            out.raw["cross_entropy"] = "fused"
        else:
            out.problems.append(f"liger_fused_linear_cross_entropy: true needs plugins: [{_LIGER_PLUGIN}]")
    for name in names:
        if name in (_CCE_PLUGIN, _LIGER_PLUGIN):
            continue
        out.ignore(f"plugins[{name}]", name, NOT_MODELLED, "an Axolotl plugin lorabench does not model")


def _precision(out: Translation, rest: dict[str, Any]) -> None:
    bf16 = rest.pop("bf16", None)
    fp16 = rest.pop("fp16", None)
    if bf16 in (True, "auto") or fp16:  # the HF Trainer's mixed precision: torch.autocast around the forward
        out.raw["autocast"] = True
    if fp16 and not bf16:
        out.ignore("fp16", fp16, NO_EFFECT, "fp16 autocast has the byte sizes of bf16 autocast, which lorabench models")
    elif bf16 is False and not fp16:
        out.ignore("bf16", bf16, NOT_MODELLED, "fp32 compute (lorabench models bf16)")
    elif bf16 not in (None, True, "auto", False):
        out.ignore("bf16", bf16, NOT_MODELLED, "pure-bf16 training keeps the adapter in bf16 (lorabench: fp32)")


def _datasets(out: Translation, value: Any, base_dir: Path | None) -> None:
    entries = value if isinstance(value, list) else [value]
    for entry in entries:
        ref = entry.get("path") if isinstance(entry, Mapping) else entry
        if not isinstance(ref, str) or not ref.strip():
            continue
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        fields: tuple[str, str] | None = None
        if isinstance(kind, Mapping):
            instr, output = kind.get("field_instruction"), kind.get("field_output")
            if isinstance(instr, str) and isinstance(output, str):
                fields = (instr, output)
        local = Path(ref).expanduser()
        if not local.is_absolute() and base_dir is not None:
            local = base_dir / local
        path = local if local.suffix.lower() in (".jsonl", ".json") or local.is_file() else None
        out.datasets.append(DatasetHint("datasets", ref, path, fields))
    out.ignore(
        "datasets",
        [d.reference for d in out.datasets],
        NOT_MODELLED,
        "the estimate assumes every sample fills sequence_len; `lorabench run --config` trains on the first "
        "when it is a local FinLoRA-style JSONL",
    )
