"""Request bodies of the JSON API (they document the OpenAPI schema); responses are the CLI's records.

The spec fields are the CLI's flags under RunSpec's names; every one is optional and overrides the uploaded
config file, as a flag overrides ``--config``. Types and ranges here are the coarse, documented ones; the
spec's own validation (:func:`lorabench.spec.parse_spec`) gives the precise, field-named message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CostRequest", "EstimateRequest", "FitRequest", "SpecFields"]

_MAX_TEXT = 256 * 1024
_NAME = 200

Method = Literal["lora", "qlora", "dora", "rslora"]
Bits = Literal[16, 8, 4]
Optimizer = Literal[
    "adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "adamw_4bit"
]
Parallelism = Literal["single", "ddp", "zero1", "zero2", "zero3", "fsdp_full_shard", "fsdp_shard_grad_op"]


class SpecFields(BaseModel):
    """A run spec: a model (catalog name, hub id, or an uploaded config), plus overrides."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())

    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=_NAME,
        description="Catalog name (GET /api/models), or a Hugging Face id in the catalog or the local HF cache.",
        examples=["llama-3.1-8b"],
    )
    model_config_text: str | None = Field(
        default=None,
        alias="model_config",
        min_length=2,
        max_length=_MAX_TEXT,
        description="The text of a Hugging Face config.json (replaces model).",
    )
    config_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=_MAX_TEXT,
        description="The text of a lorabench, Axolotl or LLaMA-Factory YAML or a PEFT adapter_config.json "
        "(kind detected by content); the other fields override it.",
    )
    config_name: str | None = Field(
        default=None, min_length=1, max_length=_NAME, description="The uploaded file's name (its suffix helps)."
    )
    method: Method | None = None
    bits: Bits | None = Field(default=None, description="Storage of the frozen base (qlora implies 4).")
    rank: int | None = Field(strict=True, default=None, ge=1, le=65536)
    alpha: float | None = Field(strict=True, default=None, gt=0, le=1e6, description="LoRA alpha (default 2 x rank).")
    dropout: float | None = Field(strict=True, default=None, ge=0, lt=1)
    targets: str | list[str] | None = Field(
        default=None,
        description="Comma list of module names, or all-linear (default q_proj,k_proj,v_proj).",
        examples=["q_proj,k_proj,v_proj"],
    )
    micro_batch: int | None = Field(strict=True, default=None, ge=1, le=1_000_000, description="Micro batch per GPU.")
    grad_accum: int | None = Field(strict=True, default=None, ge=1, le=1_000_000)
    seq_len: int | None = Field(strict=True, default=None, ge=1, le=10_000_000, description="Sequence length (tokens).")
    epochs: float | None = Field(strict=True, default=None, gt=0, le=10_000)
    grad_ckpt: bool | None = Field(strict=True, default=None, description="Gradient checkpointing.")
    autocast: bool | None = Field(
        strict=True, default=None, description="bf16 autocast around the forward (the HF Trainer's bf16: true)."
    )
    pure_bf16: bool | None = Field(
        strict=True, default=None, description="The whole model in bf16: adapters too, no fp32 upcast of a k-bit base."
    )
    optimizer: Optimizer | None = None
    parallelism: Parallelism | None = None
    gpu: str | None = Field(
        default=None, min_length=1, max_length=_NAME, description="GPU (catalog name or alias, GET /api/gpus)."
    )
    gpus: int | None = Field(strict=True, default=None, ge=1, le=4096, description="Number of GPUs.")

    def payload(self) -> dict[str, Any]:
        """The fields as the worker takes them (uploads under ``model_config`` / ``config_text``)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class EstimateRequest(SpecFields):
    """``lorabench estimate``: parameters, weights, peak memory per component, which GPUs fit, time."""

    engine: Literal["formula", "simulate", "none"] = Field(
        default="formula",
        description="Peak-memory engine. The server's default is formula (instant); simulate runs the fake-tensor "
        "step in the compute worker, one at a time, with a time limit.",
    )
    device: Literal["cuda", "cpu"] = "cuda"
    tokens: int | None = Field(
        strict=True,
        default=None,
        ge=1,
        le=10**15,
        description="Tokens the whole job processes, for the time prediction.",
    )


class FitRequest(SpecFields):
    """``lorabench fit``: the largest micro batch and sequence length on one GPU."""

    gpu: str = Field(min_length=1, max_length=_NAME, description="GPU to fit on (catalog name or alias).")


class DatasetIn(BaseModel):
    """Tokens per epoch (files are not read by the server)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tokens: int = Field(strict=True, gt=0, le=10**15)
    examples: int | None = Field(strict=True, default=None, gt=0, le=10**15)
    validation_tokens: int = Field(strict=True, default=0, ge=0, le=10**15)


class SelfHostedIn(BaseModel):
    """A self-hosted row: hours on a GPU, or a spec whose time lorabench predicts."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=_NAME)
    hours: float | None = Field(strict=True, default=None, gt=0, le=1e7)
    spec: dict[str, Any] | None = Field(default=None, description="RunSpec fields (a scenario's inline spec).")
    efficiency: float | None = Field(strict=True, default=None, gt=0, le=1)
    gpu: str | None = Field(default=None, min_length=1, max_length=_NAME)
    count: int | None = Field(strict=True, default=None, ge=1, le=4096)
    usd_per_gpu_hour: float | None = Field(strict=True, default=None, gt=0, le=1e6)
    rate: str | None = Field(default=None, min_length=1, max_length=_NAME)
    provider: str | None = Field(default=None, min_length=1, max_length=_NAME)
    note: str | None = Field(default=None, min_length=1, max_length=1000)


class ServiceIn(BaseModel):
    """A service by catalog id, optionally with its own epochs."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=_NAME)
    epochs: float | None = Field(strict=True, default=None, gt=0, le=10_000)


class CostRequest(BaseModel):
    """``lorabench cost``: a scenario, as its YAML would hold it, without file paths."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dataset: DatasetIn
    epochs: float | None = Field(strict=True, default=None, gt=0, le=10_000)
    self_hosted: list[SelfHostedIn] = Field(default=[], max_length=32)
    services: list[str | ServiceIn] = Field(default=[], max_length=64, description="Service ids (GET /api/catalog).")
    references: list[str] = Field(default=[], max_length=64, description="Reference ids (GET /api/catalog).")
    default_epoch_rows: bool = Field(default=True, strict=True)
