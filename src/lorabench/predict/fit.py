"""The largest micro batch or sequence length that fits on a GPU, by the formula engine.

:func:`largest_fitting` predicts the per-GPU device total (peak allocated bytes after parallelism, plus the
allocator's reserved slack and the CUDA context: :func:`lorabench.predict.memory.device.device_totals`) with
:func:`lorabench.predict.memory.formula.formula_memory` and compares it with the catalog GPU's memory. Memory grows
with the micro batch and the sequence length, so an exponential search (1, 2, 4, ...) brackets the answer and a
binary search finds it: a few dozen formula calls, microseconds each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from lorabench.errors import ConfigError
from lorabench.spec import RunSpec

__all__ = [
    "DEFAULT_MAX_VALUE",
    "FIT_SCHEMA",
    "FIT_SCHEMA_VERSION",
    "FitResult",
    "device_total",
    "fit_record",
    "largest_fitting",
]

FIT_SCHEMA = "lorabench.fit"
FIT_SCHEMA_VERSION = 1

# The RunSpec bounds: the search never goes past what a spec can hold.
DEFAULT_MAX_VALUE: dict[str, int] = {"batch": 1_000_000, "seq_len": 10_000_000}


@dataclass(frozen=True)
class FitResult:
    """The largest value of one dimension (micro batch or sequence length) that fits on one GPU.

    Attributes:
        what: ``batch`` (micro batch per GPU) or ``seq_len``.
        gpu: The catalog key of the GPU.
        gpus: GPUs the spec runs on (parallelism applied per GPU).
        parallelism: The spec's parallelism.
        vram_bytes: One GPU's memory (catalog).
        fixed_batch: The micro batch used (the searched value when ``what`` is ``batch``).
        fixed_seq_len: The sequence length used (the searched value when ``what`` is ``seq_len``).
        value: The largest value that fits, or None when even 1 does not fit.
        device_total_bytes: The per-GPU device total at ``value`` (None when nothing fits).
        next_value: ``value + 1`` (1 when nothing fits), or None when ``value`` is the search cap.
        next_device_total_bytes: The device total at ``next_value`` (more than ``vram_bytes``), or None.
        max_value: The search cap.
        engine: ``formula``.
        device_total_at_one_bytes: The device total at 1 (what does not fit when ``value`` is None).
    """

    what: str
    gpu: str
    gpus: int
    parallelism: str
    vram_bytes: int
    fixed_batch: int
    fixed_seq_len: int
    value: int | None
    device_total_bytes: int | None
    next_value: int | None
    next_device_total_bytes: int | None
    max_value: int
    engine: str
    device_total_at_one_bytes: int

    @property
    def fits(self) -> bool:
        """Whether any value (at least 1) fits."""
        return self.value is not None

    def message(self) -> str:
        """One line saying what was found (or that nothing fits)."""
        name = "micro batch" if self.what == "batch" else "sequence length"
        if self.value is None:
            return (
                f"even a {name} of 1 does not fit on {self.gpu}: it needs {self.device_total_at_one_bytes / 1e9:.2f} "
                f"GB of {self.vram_bytes / 1e9:.2f} GB"
            )
        tail = (
            f"; {self.next_value} needs {self.next_device_total_bytes / 1e9:.2f} GB"
            if self.next_value is not None and self.next_device_total_bytes is not None
            else f" (the search cap {self.max_value})"
        )
        total = self.device_total_bytes or 0
        return f"largest {name}: {self.value} ({total / 1e9:.2f} GB of {self.vram_bytes / 1e9:.2f} GB{tail})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "fits": self.fits}


def _with_gpus(spec: RunSpec, gpus: int | None) -> RunSpec:
    if gpus is None or gpus == spec.hardware.count:
        return spec
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"gpus must be a positive integer (got {gpus!r})")
    parallelism = spec.parallelism
    if gpus > 1 and parallelism == "single":
        parallelism = "ddp"
    if gpus == 1:
        parallelism = "single"
    hardware = spec.hardware.model_copy(update={"count": gpus})
    return spec.model_copy(update={"hardware": hardware, "parallelism": parallelism})


def _layers_and_vocab(spec: RunSpec) -> tuple[int, int]:
    from lorabench.models import resolve_model
    from lorabench.models.facts import model_facts

    config = model_facts(spec, resolve_model(spec.model)).config
    return int(getattr(config, "num_hidden_layers", 1) or 1), int(getattr(config, "vocab_size", 0) or 0)


def _device_total(spec: RunSpec, micro_batch: int, seq_len: int, layers: int, vocab: int) -> int:
    from lorabench.predict.memory.device import device_totals, logits_bytes
    from lorabench.predict.memory.formula import formula_memory

    result = formula_memory(spec, "cuda", micro_batch=micro_batch, seq_len=seq_len)
    logits = logits_bytes(spec, vocab, micro_batch, seq_len)
    return device_totals(result.breakdown, spec, layers, cuda=True, logits=logits).device_total_bytes


def device_total(spec: RunSpec, micro_batch: int, seq_len: int) -> int:
    """Per-GPU device total (formula peak after parallelism, plus slack and CUDA context) for a CUDA run.

    Raises:
        ConfigError: Bad batch or length.
        ModelError: Unknown model or target module.
    """
    return _device_total(spec, micro_batch, seq_len, *_layers_and_vocab(spec))


def largest_fitting(
    spec: RunSpec,
    gpu: str,
    what: Literal["batch", "seq_len"],
    gpus: int | None = None,
    max_value: int | None = None,
) -> FitResult:
    """Find the largest micro batch or sequence length whose predicted device total fits on one catalog GPU.

    The micro batch is searched at the spec's sequence length, the sequence length at the spec's micro batch.

    Args:
        spec: The run spec (its parallelism and GPU count decide what each GPU holds).
        gpu: A GPU catalog name or alias (``H100``, ``a5000``, ``RTX 4090``).
        what: ``batch`` or ``seq_len``.
        gpus: GPUs to run on (default: the spec's count); more than one with a ``single`` spec means DDP.
        max_value: Search cap (default: the RunSpec bound, 1,000,000 rows or 10,000,000 tokens).

    Returns:
        The largest value that fits with its device total and the next value's total, or ``value=None``
        when even 1 does not fit.

    Raises:
        ConfigError: ``what`` is not ``batch`` or ``seq_len``, or a bad ``gpus`` or ``max_value``.
        CatalogError: Unknown GPU.
        ModelError: Unknown model or target module.
    """
    from lorabench.hardware.catalog import resolve_gpu

    if what not in ("batch", "seq_len"):
        raise ConfigError(f"what must be 'batch' or 'seq_len' (got {what!r})")
    cap = DEFAULT_MAX_VALUE[what] if max_value is None else max_value
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ConfigError(f"max_value must be a positive integer (got {max_value!r})")
    card = resolve_gpu(gpu)
    run = _with_gpus(spec, gpus)
    run = run.model_copy(update={"hardware": run.hardware.model_copy(update={"gpu": card.key})})  # its workspaces
    vram = card.vram_bytes
    layers, vocab = _layers_and_vocab(run)  # once per search, not per probe

    def total(value: int) -> int:
        if what == "batch":
            return _device_total(run, value, run.seq_len, layers, vocab)
        return _device_total(run, run.micro_batch, value, layers, vocab)

    def result(value: int | None, at: int | None, nxt: int | None, nxt_total: int | None, one: int) -> FitResult:
        return FitResult(
            what=what,
            gpu=card.key,
            gpus=run.hardware.count,
            parallelism=run.parallelism,
            vram_bytes=vram,
            fixed_batch=run.micro_batch if what == "seq_len" else (value or 1),
            fixed_seq_len=run.seq_len if what == "batch" else (value or 1),
            value=value,
            device_total_bytes=at,
            next_value=nxt,
            next_device_total_bytes=nxt_total,
            max_value=cap,
            engine="formula",
            device_total_at_one_bytes=one,
        )

    at_one = total(1)
    if at_one > vram:
        return result(None, None, 1, at_one, at_one)
    good, good_total = 1, at_one
    bad: int | None = None
    bad_total: int | None = None
    probe = 2
    while good < cap:  # exponential search: double until something does not fit
        probe = min(probe, cap)
        probe_total = total(probe)
        if probe_total > vram:
            bad, bad_total = probe, probe_total
            break
        good, good_total = probe, probe_total
        probe *= 2
    if bad is None:
        return result(good, good_total, None, None, at_one)
    while bad - good > 1:  # binary search: good fits, bad does not
        middle = (good + bad) // 2
        middle_total = total(middle)
        if middle_total > vram:
            bad, bad_total = middle, middle_total
        else:
            good, good_total = middle, middle_total
    return result(good, good_total, bad, bad_total, at_one)


FIT_SCHEMA = "lorabench.fit"
FIT_SCHEMA_VERSION = 1


def fit_record(spec: RunSpec, gpu: str, gpus: int | None = None) -> dict[str, Any]:
    """Search both dimensions for ``spec`` on ``gpu`` and assemble the JSON-ready record.

    Raises:
        CatalogError: Unknown GPU.
        ModelError: Unknown model or target module.
    """
    from lorabench.hardware.catalog import resolve_gpu
    from lorabench.predict.memory.device import CUDA_CONTEXT_BYTES, LOGITS_SLACK_FACTOR, RESERVED_SLACK_FRACTION

    card = resolve_gpu(gpu)
    batch = largest_fitting(spec, card.key, "batch", gpus=gpus)
    length = largest_fitting(spec, card.key, "seq_len", gpus=gpus)
    return {
        "schema": FIT_SCHEMA,
        "schema_version": FIT_SCHEMA_VERSION,
        "spec": spec.model_dump(mode="json"),
        "gpu": card.key,
        "gpu_display_name": card.display_name,
        "gpus": batch.gpus,
        "parallelism": batch.parallelism,
        "vram_bytes": card.vram_bytes,
        "engine": "formula",
        "largest_micro_batch": batch.to_dict(),
        "largest_seq_len": length.to_dict(),
        "provenance": {
            "device_total_bytes": (
                "predicted (formula engine, cuda) peak allocated per GPU after parallelism "
                f"+ reserved slack (the larger of {RESERVED_SLACK_FRACTION:.0%} and {LOGITS_SLACK_FACTOR}x "
                "the fp32 logits) "
                f"+ {CUDA_CONTEXT_BYTES / 1e9:.2f} GB CUDA context"
            ),
            "vram_bytes": f"catalog ({card.source}, checked {card.checked})",
        },
    }
