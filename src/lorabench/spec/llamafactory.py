"""Translate a LLaMA-Factory training YAML into RunSpec fields, listing every key that does not become one.

Values a file leaves out take LLaMA-Factory's own defaults (``cutoff_len`` 2048, ``lora_target: all``,
``lora_dropout`` 0.0, gradient checkpointing on, Hugging Face's batch size 8, 3 epochs, learning rate 5e-5),
so the spec describes the run LLaMA-Factory would start; each default used is noted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lorabench.spec.common import apply_deepspeed, fsdp_parallelism, set_optimizer
from lorabench.spec.source import NO_EFFECT, NOT_MODELLED, UNRECOGNISED, DatasetHint, Translation

__all__ = ["V1_KEYS", "from_llamafactory"]

# Keys of LLaMA-Factory's v1 configs (examples/v1: `model` plus nested peft/quant/dist/kernel blocks).
_V1_KEYS = ("model_class", "peft_config", "dist_config", "kernel_config", "quant_config", "train_dataset")
V1_KEYS = frozenset(_V1_KEYS)

_DEFAULTS: dict[str, tuple[str, Any]] = {
    "cutoff_len": ("seq_len", 2048),
    "per_device_train_batch_size": ("micro_batch", 8),
    "gradient_accumulation_steps": ("grad_accum", 1),
    "num_train_epochs": ("epochs", 3.0),
    "learning_rate": ("learning_rate", 5e-5),
    "lora_rank": ("rank", 8),
    "lora_dropout": ("dropout", 0.0),
}
_ATTENTION = {"auto": "sdpa", "sdpa": "sdpa", "fa2": "flash_attention_2", "disabled": "eager"}

_NO_EFFECT_PREFIXES: dict[str, tuple[str, ...]] = {
    "logging, reporting and output": (
        "output_dir",
        "overwrite_output_dir",
        "logging_",
        "save_",
        "plot_loss",
        "report_to",
        "run_name",
        "swanlab_",
        "use_swanlab",
        "hub_",
        "push_to_hub",
        "print_param_status",
        "export_",
    ),
    "evaluation runs outside the training step (not part of the estimate)": (
        "do_eval",
        "do_predict",
        "eval_",
        "per_device_eval_batch_size",
        "val_size",
        "predict_with_generate",
        "compute_accuracy",
    ),
    "schedule and optimizer hyper-parameters (values, not state sizes)": (
        "lr_scheduler_",
        "warmup_",
        "weight_decay",
        "adam_",
        "max_grad_norm",
        "seed",
        "data_seed",
        "loraplus_",
        "optim_args",
    ),
    "tokenizer, prompt format and data preparation": (
        "template",
        "dataset_dir",
        "overwrite_cache",
        "preprocessing_",
        "dataloader_",
        "tokenized_path",
        "train_on_prompt",
        "mask_history",
        "default_system",
        "enable_thinking",
        "tool_format",
        "use_fast_tokenizer",
        "split_special_tokens",
        "new_special_tokens",
        "ignore_pad_token_for_loss",
        "mix_strategy",
        "interleave_probs",
        "buffer_size",
        "media_dir",
    ),
    "run control and bookkeeping": (
        "do_train",
        "trust_remote_code",
        "ddp_timeout",
        "ddp_find_unused_parameters",
        "resume_from_checkpoint",
        "model_revision",
        "cache_dir",
        "low_cpu_mem_usage",
        "use_reentrant_gc",
        "pissa_init",
        "pissa_iter",
        "pissa_convert",
        "create_new_adapter",
        "quantization_type",
        "tf32",
        "ray_",
        "use_ray",
        "hf_hub_token",
        "ms_hub_token",
        "om_hub_token",
        "infer_",
        "use_kv_cache",
        "adapter_folder",
    ),
}

_NOT_MODELLED: dict[str, str] = {
    "packing": "packs several samples into each cutoff_len row (memory of full rows, no padding tokens)",
    "neat_packing": "packing without cross-attention between samples",
    "max_samples": "caps the number of training samples (fewer steps)",
    "max_steps": "stops after this many optimizer steps; the estimate times whole epochs",
    "streaming": "streams the dataset",
    "enable_liger_kernel": "Liger fused RMSNorm/SwiGLU/RoPE kernels save activation memory",
    "use_unsloth": "Unsloth kernels",
    "shift_attn": "shifted-sparse attention",
    "rope_scaling": "RoPE scaling for longer contexts",
    "upcast_layernorm": "fp32 layer norms",
    "upcast_lmhead_output": "fp32 lm_head output",
    "mixture_of_depths": "mixture-of-depths",
    "moe_aux_loss_coef": "MoE router auxiliary loss",
    "resize_vocab": "resizes the embeddings",
    "add_tokens": "adds tokens (embedding rows)",
    "add_special_tokens": "adds tokens (embedding rows)",
    "use_galore": "GaLore optimizer",
    "use_apollo": "APOLLO optimizer",
    "use_badam": "BAdam optimizer",
    "use_adam_mini": "Adam-mini optimizer",
    "use_llama_pro": "LLaMA Pro block expansion",
    "use_mca": "Megatron-core adapter",
    "use_megatron_bridge": "Megatron bridge",
    "torch_compile": "torch.compile changes activation memory and speed",
    "ref_model": "separate reference model (preference training)",
    "reward_model": "separate reward model (PPO)",
    "quantization_device_map": "quantized-model device map",
    "gradient_checkpointing_kwargs": "gradient checkpointing options",
    "fsdp_config": "FSDP options beyond sharding and offload",
}


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict, tuple)) and len(value) == 0)


def _classify(out: Translation, key: str, value: Any) -> None:
    if key in _NOT_MODELLED or any(key.startswith(p) for p in ("galore_", "apollo_", "badam_", "pref_", "ppo_")):
        if value is not False:
            out.ignore(
                key, value, NOT_MODELLED, _NOT_MODELLED.get(key, "an optimizer or stage lorabench does not model")
            )
        return
    for reason, names in _NO_EFFECT_PREFIXES.items():
        if any(key == n or (n.endswith("_") and key.startswith(n)) for n in names):
            out.ignore(key, value, NO_EFFECT, reason)
            return
    if value is not False:
        out.ignore(key, value, UNRECOGNISED, "not a LLaMA-Factory key lorabench knows; check whether it changes memory")


def from_llamafactory(data: Mapping[str, Any], base_dir: Path | None = None) -> Translation:
    """Translate LLaMA-Factory's keys (model_name_or_path, lora_rank, quantization_bit, cutoff_len, ...).

    Args:
        data: The parsed LLaMA-Factory YAML.
        base_dir: The file's folder, for relative ``deepspeed`` and ``dataset_dir`` paths.

    Returns:
        The translation; ``problems`` lists unsupported values.
    """
    if "model_name_or_path" not in data and any(k in data for k in _V1_KEYS):
        return _from_v1(data, base_dir)
    out = Translation()
    raw = out.raw
    rest = {str(k): v for k, v in data.items() if not _unset(v)}
    take = rest.pop
    dirs = (Path.cwd(),) + ((base_dir,) if base_dir is not None else ())

    if "model_name_or_path" in rest:
        raw["model"] = take("model_name_or_path")
    else:
        out.problems.append("model_name_or_path: required (the model to fine-tune)")
    stage = take("stage", "sft")
    if stage not in ("sft", "pt"):
        out.ignore(
            "stage",
            stage,
            NOT_MODELLED,
            "preference / reward / PPO stages run extra models or passes; estimated as supervised fine-tuning",
        )
    finetuning = take("finetuning_type", "lora")
    if finetuning != "lora":
        out.problems.append(f"finetuning_type: lorabench models 'lora' (got {finetuning!r})")
    for key, (field, default) in _DEFAULTS.items():
        if key in rest:
            raw[field] = take(key)
        else:
            raw[field] = default
            out.notes.append(f"{key}: not set; LLaMA-Factory's default {default} used")
    if "lora_alpha" in rest:
        raw["alpha"] = take("lora_alpha")  # absent: lora_rank * 2, lorabench's own default
    target = take("lora_target", "all")
    if isinstance(target, str):
        names = [t.strip() for t in target.split(",") if t.strip()]
        raw["targets"] = "all-linear" if names == ["all"] else names
    else:
        raw["targets"] = target
    extra = take("additional_target", None)
    if extra is not None:
        raw["modules_to_save"] = [t.strip() for t in extra.split(",") if t.strip()] if isinstance(extra, str) else extra
    dora, rslora = bool(take("use_dora", False)), bool(take("use_rslora", False))
    if dora and rslora:
        out.problems.append("use_dora/use_rslora: both are true; lorabench models one method per run")
    _quantization(out, rest)
    raw["method"] = "dora" if dora else "rslora" if rslora else "qlora" if raw.get("bits") == 4 else "lora"

    disable_gc = take("disable_gradient_checkpointing", False)
    raw["grad_ckpt"] = not bool(disable_gc)
    if "disable_gradient_checkpointing" not in data:
        out.notes.append("disable_gradient_checkpointing: not set; LLaMA-Factory checkpoints gradients by default")
    if take("use_unsloth_gc", False):
        raw["grad_ckpt"] = True
        raw["activation_offload"] = True
    if "gradient_checkpointing" in rest:
        raw["grad_ckpt"] = bool(take("gradient_checkpointing"))

    flash = take("flash_attn", None)
    if flash is not None:
        if isinstance(flash, str) and flash in _ATTENTION:
            raw["attention"] = _ATTENTION[flash]
            if flash == "auto":
                out.notes.append("flash_attn: auto modelled as sdpa (LLaMA-Factory picks sdpa unless told fa2)")
        else:
            out.ignore(
                "flash_attn", flash, NOT_MODELLED, "only disabled, sdpa, fa2 and auto are modelled; estimated as sdpa"
            )
    if rest.get("enable_liger_kernel"):
        raw["cross_entropy"] = "fused"
        out.notes.append(
            "enable_liger_kernel: the fused linear cross-entropy is modelled; Liger's other kernels "
            "are listed as not modelled"
        )
    set_optimizer(out, "optim", take("optim", None))
    apply_deepspeed(out, "deepspeed", take("deepspeed", None), dirs)
    fsdp = take("fsdp", None)
    if isinstance(fsdp, (str, list)) and fsdp:
        words = fsdp.split() if isinstance(fsdp, str) else [str(w) for w in fsdp]
        strategy = next((w for w in words if "shard" in w.lower()), "full_shard")
        fsdp_parallelism(out, strategy, "offload" in words)
    _precision(out, rest)
    if "dataset" in rest:
        _datasets(out, take("dataset"), take("dataset_dir", "data"), dirs)
    for key, value in rest.items():
        _classify(out, key, value)
    return out


def _quantization(out: Translation, rest: dict[str, Any]) -> None:
    bits = rest.pop("quantization_bit", None)
    method = rest.pop("quantization_method", "bnb")
    double = rest.pop("double_quantization", True)
    if bits is None:
        return
    if bits in (4, 8):
        out.raw["bits"] = bits
    else:
        out.problems.append(f"quantization_bit: lorabench models 4 and 8 (got {bits!r})")
    if method != "bnb":
        out.ignore(
            "quantization_method",
            method,
            NOT_MODELLED,
            "lorabench models bitsandbytes; the base is estimated as bitsandbytes at the same bit width",
        )
    if bits == 4 and double is False:
        out.ignore(
            "double_quantization",
            double,
            NOT_MODELLED,
            "NF4 without double quantization keeps fp32 absmax constants (lorabench models double quantization)",
        )


def _precision(out: Translation, rest: dict[str, Any]) -> None:
    bf16, fp16 = rest.pop("bf16", None), rest.pop("fp16", None)
    pure = rest.pop("pure_bf16", None)
    if pure:  # the model, adapters included, in bf16 with no fp32 upcast
        out.raw["pure_bf16"] = True
    if bf16 or fp16:  # the HF Trainer's mixed precision: torch.autocast around the forward
        out.raw["autocast"] = True
    if fp16 and not bf16:
        out.ignore("fp16", fp16, NO_EFFECT, "fp16 autocast has the byte sizes of bf16 autocast, which lorabench models")
    elif not bf16 and not fp16:
        out.notes.append("bf16/fp16: neither set; LLaMA-Factory computes in the model's dtype (modelled as bf16)")


def _datasets(out: Translation, names: Any, dataset_dir: Any, dirs: tuple[Path, ...]) -> None:
    if isinstance(names, str):
        refs = [n.strip() for n in names.split(",")]
    elif isinstance(names, list):
        refs = [str(n) for n in names]
    else:
        out.problems.append(f"dataset: expected a comma-separated list of dataset names (got {names!r})")
        return
    info: dict[str, Any] = {}
    folder: Path | None = None
    for base in dirs:
        candidate = (base / str(dataset_dir)).expanduser()
        try:
            loaded = json.loads((candidate / "dataset_info.json").read_text("utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(loaded, dict):
            info, folder = loaded, candidate
            break
    for ref in [r for r in refs if r]:
        entry = info.get(ref)
        path: Path | None = None
        fields: tuple[str, str] | None = None
        if isinstance(entry, dict) and isinstance(entry.get("file_name"), str) and folder is not None:
            path = folder / entry["file_name"]
            columns = entry.get("columns")
            if isinstance(columns, dict) and isinstance(columns.get("prompt"), str):
                response = columns.get("response")
                fields = (columns["prompt"], response) if isinstance(response, str) else None
        out.datasets.append(DatasetHint("dataset", ref, path, fields))
    where = f" in {folder / 'dataset_info.json'}" if folder is not None else " (no dataset_info.json found)"
    out.ignore(
        "dataset",
        refs,
        NOT_MODELLED,
        f"the estimate assumes every sample fills cutoff_len; names looked up{where}; `lorabench run --config` "
        "trains on the first when it is a local FinLoRA-style JSONL",
    )


_V1_NO_EFFECT = {"model_class", "output_dir", "sample_backend", "max_new_tokens", "logging_steps", "save_steps", "seed"}


def _from_v1(data: Mapping[str, Any], base_dir: Path | None) -> Translation:
    """LLaMA-Factory v1 configs: ``model``, ``peft_config``, ``quant_config``, ``dist_config``, ``kernel_config``."""
    out = Translation()
    raw = out.raw
    rest = {str(k): v for k, v in data.items() if not _unset(v)}
    if "model" in rest:
        raw["model"] = rest.pop("model")
    else:
        out.problems.append("model: required (the model to fine-tune)")
    peft = rest.pop("peft_config", None)
    if not isinstance(peft, Mapping):
        out.problems.append(
            "peft_config: not set, so LLaMA-Factory fine-tunes every weight (full fine-tuning); lorabench models "
            "peft_config: {name: lora}"
        )
    else:
        peft = dict(peft)
        if peft.pop("name", "lora") != "lora":
            out.problems.append(f"peft_config.name: lorabench models 'lora' (got {data['peft_config'].get('name')!r})")
        for src, dst in (("r", "rank"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout")):
            if peft.get(src) is not None:
                raw[dst] = peft.pop(src)
        target = peft.pop("target_modules", "all")
        names = [t.strip() for t in target.split(",")] if isinstance(target, str) else target
        raw["targets"] = "all-linear" if names in (["all"], ["all-linear"]) else names
        for key, value in peft.items():
            if not _unset(value):
                out.ignore(f"peft_config.{key}", value, UNRECOGNISED, "a peft_config key lorabench does not read")
    quant = rest.pop("quantization_config", None) or rest.pop("quant_config", None)
    if isinstance(quant, Mapping):
        _quantization(out, {"quantization_bit": quant.get("quantization_bit"), "quantization_method": "bnb"})
        if quant.get("name") not in (None, "bnb", "auto"):
            out.ignore("quant_config.name", quant.get("name"), NOT_MODELLED, "lorabench models bitsandbytes")
    raw["method"] = "qlora" if raw.get("bits") == 4 else "lora"
    dist = rest.pop("dist_config", None)
    if isinstance(dist, Mapping):
        name = str(dist.get("name", ""))
        if name.startswith("fsdp"):
            fsdp_parallelism(out, "full_shard", bool(dist.get("offload_params") or dist.get("cpu_offload")))
        else:
            out.ignore("dist_config", dist, NOT_MODELLED, f"distributed backend {name!r}")
    for src, dst in (
        ("micro_batch_size", "micro_batch"),
        ("cutoff_len", "seq_len"),
        ("learning_rate", "learning_rate"),
    ):
        if src in rest:
            raw[dst] = rest.pop(src)
    kernel = rest.pop("kernel_config", None)
    if isinstance(kernel, Mapping) and kernel.get("name") not in (None, "none"):
        out.ignore("kernel_config", kernel, NOT_MODELLED, "fused kernels (auto / Liger) save activation memory")
    dataset = rest.pop("train_dataset", None)
    if isinstance(dataset, str):
        path = Path(dataset) if Path(dataset).is_absolute() or base_dir is None else base_dir / dataset
        out.datasets.append(DatasetHint("train_dataset", dataset, path if path.suffix == ".jsonl" else None))
        out.ignore("train_dataset", dataset, NOT_MODELLED, "the estimate assumes every sample fills cutoff_len")
    for key, value in rest.items():
        if key in _V1_NO_EFFECT:
            out.ignore(key, value, NO_EFFECT, "output, logging and sampling settings")
        else:
            _classify(out, key, value)
    return out
