"""RunSpec: the one validated description of one fine-tuning configuration.

Every command takes a :class:`RunSpec`; nothing downstream re-parses options. A spec is
built from CLI flags, a lorabench YAML, an Axolotl YAML or a PEFT ``adapter_config.json``
(see :mod:`lorabench.spec.loaders`); :func:`parse_spec` validates raw values and reports
*every* problem at once, naming each field and what it allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from lorabench.errors import ConfigError

__all__ = [
    "ALL_LINEAR",
    "DEFAULT_TARGETS",
    "Hardware",
    "RunSpec",
    "parse_spec",
]

Method = Literal["lora", "qlora", "dora", "rslora"]
Bits = Literal[16, 8, 4]
Optimizer = Literal[
    "adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "adamw_4bit"
]
Parallelism = Literal["single", "ddp", "zero1", "zero2", "zero3", "fsdp_full_shard", "fsdp_shard_grad_op"]
Attention = Literal["eager", "sdpa", "flash_attention_2"]
CrossEntropy = Literal["standard", "fused"]


def _sorted_pairs(value: Any) -> Any:
    # rank_pattern / alpha_pattern arrive as mappings (YAML, adapter_config.json); keep them hashable and ordered.
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), v) for k, v in value.items()))
    return value


SortedPairs = BeforeValidator(_sorted_pairs)


def _not_a_bool(value: Any, info: ValidationInfo) -> Any:
    # YAML and JSON booleans are ints to pydantic's lax mode: `rank: true` must not become rank 1.
    if isinstance(value, bool):
        raise ValueError(f"{info.field_name}: expected a number, got {str(value).lower()}")
    return value


NotBool = BeforeValidator(_not_a_bool)
"""Marks a numeric field that rejects true/false instead of reading them as 1/0."""

ALL_LINEAR = "all-linear"
# FinLoRA's choice (its adapters and Axolotl config target q/k/v), and the seed table's.
DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")


class Hardware(BaseModel):
    """GPU type and count. ``gpu`` is free-form until the GPU catalog resolves it; None means unspecified."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    gpu: str | None = Field(default=None, min_length=1)
    count: Annotated[int, NotBool] = Field(default=1, ge=1, le=4096)

    def label(self) -> str:
        """Human label such as ``4×A5000`` or ``1×(unspecified GPU)``."""
        return f"{self.count}×{self.gpu or '(unspecified GPU)'}"


class RunSpec(BaseModel):
    """One fine-tuning configuration.

    ``method`` picks the adapter: ``lora``; ``qlora`` (LoRA on a 4-bit NF4 base with double
    quantization and bf16 compute, so it requires ``bits=4``); ``dora`` (PEFT ``use_dora``);
    ``rslora`` (PEFT ``use_rslora``, scaling alpha/sqrt(r)). ``bits`` is the storage of the
    frozen base: 16 (bf16), 8 (bitsandbytes LLM.int8) or 4 (bitsandbytes NF4 + double quant).

    Fields that PEFT and the trainers name the same way: ``modules_to_save`` (modules trained in full as
    copies, e.g. ``embed_tokens`` / ``lm_head``), ``layers_to_transform`` (decoder layer indices that get
    adapters; None = all), ``rank_pattern`` / ``alpha_pattern`` (per-module overrides, name or regex -> value).
    ``parallelism`` adds FSDP (``fsdp_full_shard`` ~ ZeRO-3, ``fsdp_shard_grad_op`` ~ ZeRO-2) with
    ``fsdp_offload`` (parameters and gradients on the CPU). ``attention`` is the implementation transformers
    runs (``eager``, ``sdpa``, ``flash_attention_2``); ``cross_entropy: fused`` is a chunked/fused loss (Liger,
    cut-cross-entropy) that never materialises the fp32 logits; ``activation_offload`` is gradient
    checkpointing with the checkpoints offloaded to the CPU (Axolotl's ``gradient_checkpointing: offload``).
    ``autocast`` is mixed-precision autocast around the forward (``torch.autocast(dtype=bfloat16)``: what the
    HF Trainer, and so Axolotl, LLaMA-Factory and TRL, run with ``bf16: true``): the fp32 adapters' matmuls,
    the k-bit recipe's fp32 ``lm_head`` and attention run in bf16. Without it (PEFT's default, and
    ``lorabench run``'s unless the spec asks) the adapters compute in fp32. ``pure_bf16`` keeps the whole model in
    its 16-bit dtype: the adapters are created in the base's dtype (PEFT ``autocast_adapter_dtype=False``) and a
    k-bit base skips PEFT's fp32 upcast of norms, embeddings and ``lm_head`` (LLaMA-Factory's ``pure_bf16``,
    Axolotl's ``bf16: full``, torchtune, Answer.AI's ``train.py``); gradients and AdamW state follow the adapters.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str = Field(min_length=1)
    method: Method = "lora"
    bits: Bits = 16
    rank: Annotated[int, NotBool] = Field(default=8, gt=0, le=65536)
    alpha: Annotated[float, NotBool] = Field(default=16.0, gt=0)
    dropout: Annotated[float, NotBool] = Field(default=0.05, ge=0.0, lt=1.0)
    targets: tuple[str, ...] | Literal["all-linear"] = DEFAULT_TARGETS
    micro_batch: Annotated[int, NotBool] = Field(default=4, ge=1, le=1_000_000)
    grad_accum: Annotated[int, NotBool] = Field(default=1, ge=1, le=1_000_000)
    seq_len: Annotated[int, NotBool] = Field(default=512, ge=1, le=10_000_000)
    epochs: Annotated[float, NotBool] = Field(default=1.0, gt=0, le=10_000)
    learning_rate: Annotated[float, NotBool] = Field(default=2e-4, gt=0, le=10)
    optimizer: Optimizer = "adamw_torch"
    grad_ckpt: bool = False
    hardware: Hardware = Hardware()
    parallelism: Parallelism = "single"
    fsdp_offload: bool = False
    modules_to_save: tuple[str, ...] = ()
    layers_to_transform: tuple[Annotated[int, NotBool], ...] | None = None
    rank_pattern: Annotated[tuple[tuple[str, Annotated[int, NotBool]], ...], SortedPairs] = ()
    alpha_pattern: Annotated[tuple[tuple[str, Annotated[float, NotBool]], ...], SortedPairs] = ()
    attention: Attention = "sdpa"
    cross_entropy: CrossEntropy = "standard"
    activation_offload: bool = False
    autocast: bool = False
    pure_bf16: bool = False

    @model_validator(mode="after")
    def _check_cross_field(self) -> RunSpec:
        problems = _cross_field_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def target_list(self) -> tuple[str, ...] | None:
        """Explicit target module names, or None for ``all-linear``."""
        return None if self.targets == ALL_LINEAR else tuple(self.targets)

    @property
    def global_batch(self) -> int:
        """Samples per optimizer step across all GPUs (micro batch x accumulation x data-parallel ranks)."""
        return self.micro_batch * self.grad_accum * self.hardware.count

    def label(self) -> str:
        """Short name like ``llama-3.1-8b-lora-r8-4bit``."""
        return f"{self.model.rsplit('/', 1)[-1]}-{self.method}-r{self.rank}-{self.bits}bit"


def _cross_field_problems(values: Mapping[str, Any]) -> list[str]:
    """Rules that involve several fields, applied leniently to raw or validated values."""
    problems: list[str] = []
    method, bits = values.get("method"), values.get("bits")
    if method == "qlora" and bits in (8, 16):
        problems.append(f"bits: qlora means a 4-bit NF4 base, so bits must be 4 (got {bits}); use lora for 8/16-bit")
    hardware = values.get("hardware")
    count = hardware.get("count") if isinstance(hardware, Mapping) else None
    if values.get("parallelism") == "single" and isinstance(count, int) and count > 1:
        problems.append(
            f"parallelism: 'single' runs on one GPU but hardware.count is {count}; "
            "use ddp, zero1, zero2, zero3, fsdp_full_shard or fsdp_shard_grad_op"
        )
    if values.get("fsdp_offload") and not str(values.get("parallelism", "")).startswith("fsdp"):
        problems.append("fsdp_offload: needs parallelism fsdp_full_shard or fsdp_shard_grad_op")
    if values.get("activation_offload") and not values.get("grad_ckpt"):
        problems.append("activation_offload: offloads gradient checkpoints, so it needs grad_ckpt: true")
    layers = values.get("layers_to_transform")
    if isinstance(layers, (list, tuple)) and any(isinstance(i, int) and i < 0 for i in layers):
        problems.append("layers_to_transform: layer indices must be >= 0")
    for name in ("rank_pattern", "alpha_pattern"):
        pattern = values.get(name)
        pairs = pattern.items() if isinstance(pattern, Mapping) else pattern
        if isinstance(pairs, (list, tuple)) and any(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[1], (int, float)) and p[1] <= 0 for p in pairs
        ):
            problems.append(f"{name}: values must be > 0")
    targets = values.get("targets")
    if isinstance(targets, (list, tuple)):
        if not targets:
            problems.append("targets: give at least one module name, or 'all-linear'")
        elif any(not isinstance(t, str) or not t.strip() for t in targets):
            problems.append("targets: module names must be non-empty strings")
    return problems


def _with_derived_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults that depend on other fields: bits from method, alpha from rank, parallelism from count."""
    data = dict(raw)
    if data.get("bits") is None:
        data.pop("bits", None)
        if data.get("method") == "qlora":
            data["bits"] = 4
    if data.get("alpha") is None:
        data.pop("alpha", None)
        rank = data.get("rank", 8)
        if isinstance(rank, int) and not isinstance(rank, bool) and rank > 0:
            data["alpha"] = 2.0 * rank  # the common alpha = 2r convention (FinLoRA: r8, alpha 16)
    if isinstance(data.get("targets"), str):
        text = data["targets"].strip()
        data["targets"] = ALL_LINEAR if text == ALL_LINEAR else [t.strip() for t in text.split(",") if t.strip()]
    hardware = data.get("hardware")
    if data.get("parallelism") is None:
        data.pop("parallelism", None)
        count = hardware.get("count") if isinstance(hardware, Mapping) else None
        if isinstance(count, int) and count > 1:
            data["parallelism"] = "ddp"
    return data


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ())) or "spec"
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        return f"{loc}: unknown field (allowed: {', '.join(RunSpec.model_fields)})"
    if error.get("type") == "missing":
        return f"{loc}: required field is missing"
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    shown = repr(error.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{loc}: {msg[0].lower() + msg[1:]} (got {shown})"


def parse_spec(raw: Mapping[str, Any], source: str = "spec") -> RunSpec:
    """Validate raw values into a RunSpec, reporting every problem at once.

    Args:
        raw: Field values (None means "use the default"); ``targets`` may be a comma list.
        source: Where the values came from (a file path or "command line"), for messages.

    Returns:
        The validated spec.

    Raises:
        ConfigError: One message listing every invalid field and what it allows.
    """
    data = _with_derived_defaults(raw)
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        problems = [part for e in exc.errors() for part in _describe(e).split("; ")]
        seen = {p.split(":", 1)[0] for p in problems}
        problems += [p for p in _cross_field_problems(data) if p.split(":", 1)[0] not in seen]
        problems = list(dict.fromkeys(problems))
        raise ConfigError(f"invalid run spec from {source}: " + "; ".join(problems)) from None
