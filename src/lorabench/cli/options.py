"""Spec flags shared by every command that takes a RunSpec.

Values are passed through untyped-as-given (strings and ints) to :func:`lorabench.spec.load_spec`,
so a bad value gets the same field-named message whether it came from a flag or a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "AlphaOpt",
    "BatchOpt",
    "BitsOpt",
    "ConfigOpt",
    "DataFieldsOpt",
    "DataFormatOpt",
    "DropoutOpt",
    "EpochsOpt",
    "GpuOpt",
    "GpusOpt",
    "GradAccumOpt",
    "GradCkptOpt",
    "LrOpt",
    "MethodOpt",
    "ModelOpt",
    "OptimizerOpt",
    "ParallelismOpt",
    "RankOpt",
    "SeqLenOpt",
    "TargetsOpt",
    "WideOpt",
    "fold_columns",
    "make_console",
    "spec_overrides",
]

_SPEC = "Run spec"

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="lorabench, Axolotl or LLaMA-Factory YAML, or PEFT adapter_config.json (kind detected by content); "
        "flags override it.",
        rich_help_panel=_SPEC,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Catalog name (`lorabench models`), HF id (catalog, mirror, or in the local HF cache), or a local dir "
        "with config.json.",
        rich_help_panel=_SPEC,
    ),
]
MethodOpt = Annotated[str | None, typer.Option(help="lora | qlora | dora | rslora.", rich_help_panel=_SPEC)]
BitsOpt = Annotated[int | None, typer.Option(help="Base storage: 16, 8 or 4 (qlora implies 4).", rich_help_panel=_SPEC)]
RankOpt = Annotated[int | None, typer.Option(help="LoRA rank r (default 8).", rich_help_panel=_SPEC)]
AlphaOpt = Annotated[float | None, typer.Option(help="LoRA alpha (default 2 x rank).", rich_help_panel=_SPEC)]
DropoutOpt = Annotated[float | None, typer.Option(help="LoRA dropout (default 0.05).", rich_help_panel=_SPEC)]
TargetsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma list of module names, or all-linear (default q_proj,k_proj,v_proj).",
        rich_help_panel=_SPEC,
    ),
]
GpuOpt = Annotated[str | None, typer.Option(help="GPU type, e.g. A5000.", rich_help_panel=_SPEC)]
GpusOpt = Annotated[int | None, typer.Option(help="Number of GPUs.", rich_help_panel=_SPEC)]


def spec_overrides(**flags: Any) -> dict[str, Any]:
    """Keep the flags the user gave (non-None) under RunSpec's field names."""
    return {key: value for key, value in flags.items() if value is not None}


BatchOpt = Annotated[
    int | None, typer.Option("--batch-size", help="Micro batch per GPU/process.", rich_help_panel=_SPEC)
]
GradAccumOpt = Annotated[int | None, typer.Option(help="Gradient accumulation steps.", rich_help_panel=_SPEC)]
SeqLenOpt = Annotated[int | None, typer.Option(help="Sequence length (tokens).", rich_help_panel=_SPEC)]
OptimizerOpt = Annotated[
    str | None,
    typer.Option(
        help="adamw_torch | adamw_torch_fused | adamw_8bit | paged_adamw_8bit | paged_adamw_32bit | adamw_4bit "
        "(config files may also use Hugging Face / Axolotl names such as adamw_bnb_8bit or adamw_torch_4bit).",
        rich_help_panel=_SPEC,
    ),
]
GradCkptOpt = Annotated[
    bool | None, typer.Option("--grad-ckpt/--no-grad-ckpt", help="Gradient checkpointing.", rich_help_panel=_SPEC)
]
AutocastOpt = Annotated[
    bool | None,
    typer.Option(
        "--autocast/--no-autocast",
        help="bf16 autocast around the forward, as the HF Trainer's bf16: true runs (adapter matmuls in bf16).",
        rich_help_panel=_SPEC,
    ),
]
PureBf16Opt = Annotated[
    bool | None,
    typer.Option(
        "--pure-bf16/--no-pure-bf16",
        help="The whole model in bf16: adapters in bf16, no fp32 upcast of a 4/8-bit base (LLaMA-Factory pure_bf16).",
        rich_help_panel=_SPEC,
    ),
]
EpochsOpt = Annotated[float | None, typer.Option(help="Epochs (spec default 1).", rich_help_panel=_SPEC)]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Learning rate (default 2e-4).", rich_help_panel=_SPEC)]
ParallelismOpt = Annotated[
    str | None, typer.Option(help="single | ddp | zero1 | zero2 | zero3.", rich_help_panel=_SPEC)
]


_DATA = "Data"
DataFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Dataset format: alpaca | chat | sharegpt | text | completion | finlora (default: detected from the "
        "columns).",
        rich_help_panel=_DATA,
    ),
]
DataFieldsOpt = Annotated[
    str | None,
    typer.Option(
        "--fields",
        help="Map a format's fields to your columns, e.g. output=answer,instruction=question.",
        rich_help_panel=_DATA,
    ),
]

WideOpt = Annotated[
    bool,
    typer.Option("--wide", help="Print tables at their natural width (no wrapping; pipe to `less -S`)."),
]

_WIDE_COLUMNS = 1000


def make_console(wide: bool = False) -> Console:
    """The console commands print to: the terminal's width, or wide enough for any table with ``--wide``."""
    from rich.console import Console

    return Console(width=_WIDE_COLUMNS) if wide else Console()


def fold_columns(table: Table) -> Table:
    """Let every column of ``table`` wrap (long names fold onto the next line) instead of ending in an ellipsis."""
    for column in table.columns:
        column.overflow = "fold"
    return table
