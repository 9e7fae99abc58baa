"""What one ``lorabench infer`` benchmark measures: the grid, the variants, the protocol and where records go.

Validation is plain and complete: :func:`check_options` reports every problem at once, each naming its flag and
what it allows. The model-dependent check (prompt plus new tokens within the model's context) is
:func:`check_context`, run once the model's config is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lorabench.errors import ConfigError

__all__ = [
    "ADAPTER_VARIANTS",
    "MAX_BATCH",
    "ORDERS",
    "POPULARITIES",
    "SYNTHETIC_PROMPTS",
    "VARIANTS",
    "InferOptions",
    "check_context",
    "check_options",
    "parse_int_list",
    "parse_popularity",
]

SYNTHETIC_PROMPTS = "synthetic"
# Variant names: the bf16 base, the same base with the adapter unmerged (PEFT LoRA layers), the adapter merged into
# the weights, N adapters on one base (PEFT multi-adapter, mixed batches), and the bitsandbytes-quantized base with
# and without the adapter (added when bits < 16).
VARIANTS = ("base", "unmerged", "merged", "multi", "base-quant", "unmerged-quant")
ADAPTER_VARIANTS = frozenset({"unmerged", "merged", "multi", "unmerged-quant"})
POPULARITIES = ("uniform", "zipf")
MAX_BATCH = 4096


ORDERS = ("auto", "interleaved", "sequential")


@dataclass(frozen=True)
class InferOptions:
    """One inference benchmark.

    Attributes:
        model: Catalog name, HF id of a catalog model, or a local folder with ``config.json``.
        adapters: PEFT LoRA adapter folders (``adapter_config.json``) or ``lorabench run`` folders; the first is
            the adapter of the single-adapter variants; all of them (cycled up to ``multi_adapters``) serve the
            multi-adapter variant.
        batch_sizes: Requests per generate call.
        prompt_lens: Prompt lengths in tokens (every prompt of a cell has exactly this many tokens).
        max_new_tokens: Tokens generated per request, always exactly this many (greedy, EOS ignored).
        warmup: Untimed runs per cell before the repeats (excluded from every figure, counted in the record).
        repeats: Timed runs per cell.
        bits: Storage of the quantized base variants (16: none; 8: LLM.int8; 4: NF4 + double quant).
        variants: Which variants to run (None: every one the adapters and bits allow).
        prompts: ``synthetic`` (random token ids) or a FinLoRA-format JSONL file (its ``context`` fields).
        multi_adapters: Adapters served together by the multi-adapter variant (0: no multi-adapter variant).
        popularity: ``uniform`` or ``zipf`` (request i goes to adapter k with probability proportional to
            ``1 / (k + 1) ** zipf_s``).
        zipf_s: Exponent of the zipf popularity.
        seed: Seed of random weights, synthetic prompts and adapter draws.
        random_weights: Build the base from its config with random weights (``tiny`` always does).
        usd_per_gpu_hour: Rate for the serving cost (default: the catalog's cheapest rate for the GPU in use).
        cpu_threads: ``torch.set_num_threads`` for a CPU run (None: 1, restored afterwards). On a shared or small
            CPU one thread gives far steadier timings than threads that wait on each other.
        out: Folder the records go to.
        order: ``interleaved``: the base, unmerged and merged variants are resident together and measured cell by
            cell in rotating order, so a drift of the machine does not land on one variant; ``sequential``: one
            variant after another (a third of the memory); ``auto``: interleaved when two more copies of the
            weights fit in free memory.
    """

    model: str
    out: Path
    adapters: tuple[Path, ...] = ()
    batch_sizes: tuple[int, ...] = (1, 4)
    prompt_lens: tuple[int, ...] = (32, 128)
    max_new_tokens: int = 16
    warmup: int = 1
    repeats: int = 5
    bits: int = 16
    variants: tuple[str, ...] | None = None
    prompts: str = SYNTHETIC_PROMPTS
    multi_adapters: int = 0
    popularity: str = "uniform"
    zipf_s: float = 1.0
    seed: int = 0
    random_weights: bool = False
    usd_per_gpu_hour: float | None = None
    cpu_threads: int | None = None
    order: str = "auto"

    def selected_variants(self) -> tuple[str, ...]:
        """The variants to run, in :data:`VARIANTS` order."""
        if self.variants is not None:
            return tuple(v for v in VARIANTS if v in self.variants)
        chosen = ["base"]
        if self.adapters:
            chosen += ["unmerged", "merged"]
            if self.multi_adapters > 1:
                chosen.append("multi")
        if self.bits < 16:
            chosen.append("base-quant")
            if self.adapters:
                chosen.append("unmerged-quant")
        return tuple(v for v in VARIANTS if v in chosen)


def parse_int_list(text: str, flag: str) -> tuple[int, ...]:
    """Parse ``"1,4,8"`` into positive integers.

    Raises:
        ConfigError: Empty, not an integer, or below 1 (the flag is named).
    """
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{flag}: give a comma list of positive integers such as 1,4 (got {text!r})")
    values = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise ConfigError(f"{flag}: {item!r} is not an integer; give a comma list such as 1,4") from None
        if value < 1:
            raise ConfigError(f"{flag}: {value} is not allowed; every value must be >= 1")
        values.append(value)
    return tuple(dict.fromkeys(values))


def parse_popularity(text: str) -> tuple[str, float]:
    """Parse ``uniform``, ``zipf`` or ``zipf:S`` into (name, exponent).

    Raises:
        ConfigError: Unknown name or a bad exponent.
    """
    name, _, exponent = text.strip().lower().partition(":")
    if name not in POPULARITIES or (name == "uniform" and exponent):
        raise ConfigError(f"--popularity: {text!r} is not allowed; use uniform, zipf or zipf:S (S > 0, e.g. zipf:1.2)")
    if not exponent:
        return name, 1.0
    try:
        s = float(exponent)
    except ValueError:
        raise ConfigError(f"--popularity: exponent {exponent!r} is not a number (e.g. zipf:1.2)") from None
    if not s > 0:
        raise ConfigError(f"--popularity: exponent must be > 0 (got {s})")
    return name, s


def check_options(options: InferOptions) -> None:
    """Check every option that does not need the model, reporting all problems at once.

    Raises:
        ConfigError: One message listing each bad flag and what it allows.
    """
    problems: list[str] = []
    if not options.batch_sizes or any(b < 1 or b > MAX_BATCH for b in options.batch_sizes):
        problems.append(
            f"--batch-sizes: every batch size must be between 1 and {MAX_BATCH} (got {options.batch_sizes})"
        )
    if not options.prompt_lens or any(p < 1 for p in options.prompt_lens):
        problems.append(f"--prompt-lens: every prompt length must be >= 1 token (got {options.prompt_lens})")
    if options.max_new_tokens < 1:
        problems.append(f"--max-new-tokens: must be >= 1 (got {options.max_new_tokens})")
    if options.warmup < 0:
        problems.append(f"--warmup: must be >= 0 (got {options.warmup})")
    if options.repeats < 1:
        problems.append(f"--repeats: must be >= 1 (got {options.repeats})")
    if options.bits not in (16, 8, 4):
        problems.append(f"--bits: must be 16, 8 or 4 (got {options.bits})")
    if options.multi_adapters < 0 or options.multi_adapters == 1:
        problems.append(f"--multi-adapters: 0 (off) or at least 2 adapters (got {options.multi_adapters})")
    if options.popularity not in POPULARITIES or not options.zipf_s > 0:
        problems.append(f"--popularity: uniform or zipf:S with S > 0 (got {options.popularity}:{options.zipf_s})")
    if options.usd_per_gpu_hour is not None and not options.usd_per_gpu_hour > 0:
        problems.append(f"--usd-per-gpu-hour: must be > 0 (got {options.usd_per_gpu_hour})")
    if options.order not in ORDERS:
        problems.append(f"--order: must be {', '.join(ORDERS)} (got {options.order!r})")
    if options.cpu_threads is not None and options.cpu_threads < 1:
        problems.append(f"--cpu-threads: must be >= 1 (got {options.cpu_threads})")
    if options.variants is not None:
        unknown = [v for v in options.variants if v not in VARIANTS]
        if unknown or not options.variants:
            problems.append(
                f"--variants: unknown {', '.join(unknown) or '(none given)'}; allowed: {', '.join(VARIANTS)}"
            )
        needs = sorted(set(options.variants) & ADAPTER_VARIANTS)
        if needs and not options.adapters:
            problems.append(f"--variants: {', '.join(needs)} need an adapter; pass --adapter DIR")
        if "multi" in options.variants and options.multi_adapters < 2:
            problems.append("--variants: multi needs --multi-adapters N with N >= 2")
        quant = [v for v in options.variants if v.endswith("-quant")]
        if quant and options.bits == 16:
            problems.append(f"--variants: {', '.join(quant)} need --bits 8 or 4")
    if options.multi_adapters > 1 and not options.adapters:
        problems.append("--multi-adapters: needs at least one --adapter DIR to serve")
    if options.prompts != SYNTHETIC_PROMPTS and not Path(options.prompts).is_file():
        problems.append(f"--prompts: {options.prompts} is not a file; give a FinLoRA-format JSONL file or 'synthetic'")
    for path in options.adapters:
        if not path.is_dir():
            problems.append(f"--adapter: {path} is not a folder (give a PEFT adapter folder or a lorabench run folder)")
    if problems:
        raise ConfigError("; ".join(problems))


def check_context(prompt_lens: Sequence[int], max_new_tokens: int, context: int | None, model: str) -> None:
    """Fail when a prompt plus its new tokens would not fit the model's context window.

    Args:
        prompt_lens: The grid's prompt lengths.
        max_new_tokens: New tokens per request.
        context: The model's ``max_position_embeddings`` (None: unknown, nothing checked).
        model: The model's name, for the message.

    Raises:
        ConfigError: The longest prompt plus ``max_new_tokens`` exceeds the context.
    """
    if context is None:
        return
    longest = max(prompt_lens)
    if longest + max_new_tokens > context:
        raise ConfigError(
            f"--prompt-lens: {longest} + --max-new-tokens {max_new_tokens} = {longest + max_new_tokens} tokens exceeds "
            f"{model}'s context of {context} tokens (max_position_embeddings); use prompt lengths up to "
            f"{context - max_new_tokens}"
        )
