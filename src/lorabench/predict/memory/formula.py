"""Peak training memory by formula: closed-form static components plus a fitted model of the dynamic ones.

:func:`formula_memory` predicts what :func:`lorabench.predict.memory.simulation.engine.simulate` reports,
in microseconds instead
of seconds, so that sweeps over thousands of configurations and "largest batch that fits" searches are instant.

Static components are exact, from the model's module graph (built once per model, method, rank and targets on
the meta device and cached; :func:`lorabench.predict.memory.params.account` gives the base and adapter bytes):

- ``weights``: the frozen base as stored -- bf16, or at 8/4 bits the packed quantized weights plus every
  non-quantized parameter (embeddings, ``lm_head``, norms, biases) upcast to fp32 by PEFT's
  ``prepare_model_for_kbit_training``, which doubles their bytes; buffers as they are.
- ``quant_constants``: bitsandbytes' absmax, row scales, code books and offsets.
- ``adapter``: the trainable LoRA/DoRA parameters (fp32, PEFT's default).
- ``optimizer_state``: ``adamw_torch`` keeps two fp32 states per trainable tensor (plus a 4-byte step
  counter per tensor on the CPU; on CUDA the counters stay on the host); ``adamw_8bit`` keeps two uint8
  states and two fp32 absmax per 256-element block for tensors of at least 4096 elements, two fp32 states
  for smaller ones, and two 256-entry fp32 quantile maps; ``paged_adamw_8bit`` has the same bytes, but on
  CUDA the states of tensors of at least 100,000 elements live in managed memory: reported as
  ``paged_optimizer_bytes``, not in the peak.
- ``adamw_torch_fused`` keeps the same states, its step counters on the device; ``paged_adamw_32bit`` keeps fp32
  states paged like the 8-bit one; ``adamw_4bit`` (torchao) packed 4-bit states with a fp32 scale per 128
  elements for tensors of at least 4096 elements. torch's AdamW keeps states in the parameter's dtype, so a
  ``modules_to_save`` copy on a 16-bit base has bf16 states (its weight and gradient are bf16 too).
- PEFT's knobs (``modules_to_save``, ``layers_to_transform``, ``rank_pattern``, ``alpha_pattern``) are part of the
  module graph, so every static part follows them exactly.
- on ``cuda`` every tensor is rounded up to the caching allocator's 512-byte blocks.

Knobs and architectures the fit did not see are added as analytic terms and the result is flagged
``extrapolated`` with a note each (the CLI prints them on stderr): ``attention: eager`` (the b x heads x s x s
softmax per kept layer), ``cross_entropy: fused`` (the fitted logits term removed), ``activation_offload`` (the
other layers' checkpoint terms removed), mixture-of-experts (the top-k routed + shared intermediate width, and
PEFT ``ParamWrapper``'s folded copy of each adapted expert stack per kept layer).

Dynamic components (``activations``, ``temporaries``, and the ``gradients`` live at the peak) are linear in
physically motivated features of the batch, sequence length and architecture (:data:`FEATURES`). The peak is the
largest of a few candidate moments (the end of the forward, the loss backward, a checkpointed layer's
recomputation, a DoRA layer's weight-norm work), so each group of (device, base bits, gradient checkpointing,
DoRA or not) has up to three linear pieces and the formula takes the one predicting the most; coefficients are
non-negative, so the prediction grows with batch and sequence length. ``benchmarks/fit_formula.py`` fits them to
simulations of random small-to-medium Llama-architecture models and stores them in ``formula_coefficients.json``
with the design, the date and the held-out error (median |error| 0.4%, full-size Llama points within 5%).
On CUDA the cuBLAS workspaces of ``spec.hardware.gpu`` (64 MiB on Hopper, as the simulation counts them) are
added to the temporaries exactly. Like the simulation's default, the formula describes padded batches (an
attention mask). With gradient accumulation the gradients of earlier micro-batches are live at the peak: all of
them are added. Other architectures than Llama's are flagged ``extrapolated``.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from lorabench.errors import ConfigError
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from lorabench.models.facts import ModelFacts

__all__ = [
    "CUDA_BLOCK_BYTES",
    "FEATURES",
    "FORMULA_COMPONENTS",
    "FormulaResult",
    "coefficients",
    "formula_features",
    "formula_memory",
    "group_key",
    "optimizer_state_bytes",
    "set_coefficients",
    "static_components",
]

CUDA_BLOCK_BYTES = 512
FORMULA_COMPONENTS: tuple[str, ...] = (
    "weights",
    "quant_constants",
    "adapter",
    "gradients",
    "optimizer_state",
    "activations",
    "temporaries",
)
DYNAMIC_COMPONENTS: tuple[str, ...] = ("gradients", "activations", "temporaries")

# Per-layer quantities: each enters twice, summed over all layers but one ("(L-1)") and for one layer ("1"), so
# that a fitted piece can describe every layer's saved tensors, or a moment inside the last layer's forward
# (the layers before it, and part of it), or one layer recomputed under checkpointing -- with non-negative
# coefficients, which keeps the prediction monotone in batch and sequence length.
_LAYER_QUANTITIES: tuple[str, ...] = (
    "T*h",  # hidden-sized tensors (norm inputs, residuals, attention output, q)
    "T*I",  # intermediate-sized tensors (gate, up, activation)
    "T*kv",  # key/value projections (kv heads x head dim)
    "T*in_a",  # inputs of the layer's adapted linears (cast to fp32 for lora_A)
    "T*in_a_dropout",  # the same when LoRA dropout is on (its output and mask)
    "T*out_a",  # outputs of the adapted linears (lora_B result; DoRA's base result)
    "T*r_a",  # lora_A outputs
    "b*s^2",  # the attention mask as an additive bias
    "b*s^2*H",  # materialised attention scores (math attention)
    "dora_W",  # DoRA: elements of the layer's adapted weights (weight-sized tensors kept for backward)
    "dora_W_dropout",  # the same with dropout on (DoRA then recomputes the base output from the weight)
)
FEATURES: tuple[str, ...] = (
    *(f"{q}*(L-1)" for q in _LAYER_QUANTITIES),
    *(f"{q}*1" for q in _LAYER_QUANTITIES),
    "T*V",  # logits and their fp32 upcasts (T = micro batch x sequence length)
    "Wq_max",  # largest quantized weight (elements): dequantized in full by a k-bit layer's backward
    "dora_in^2",  # DoRA: in x in identity through lora_A/lora_B to build the adapter weight (largest layer)
    "dora_in*out",  # DoRA: that layer's adapter weight, dequantized base weight and their sum
    "G",  # bytes of all trainable gradients (fp32)
    "1",  # fixed bytes
)

_Targets = tuple[str, ...] | Literal["all-linear"]


_COEFFICIENTS_FILE = "formula_coefficients.json"
_PAGED_MIN_NUMEL = 100_000
_BNB_MIN_8BIT_NUMEL = 4096
_BNB_BLOCK = 256
_QMAP_BYTES = 2 * 256 * 4
_FP32 = 4


@dataclass(frozen=True)
class FormulaResult:
    """The formula's prediction of one training step's peak.

    Attributes:
        peak_allocated_bytes: Predicted peak of live tensor bytes (``torch.cuda.max_memory_allocated`` on CUDA).
        breakdown: Bytes per component at the peak (``weights``, ``quant_constants``, ``adapter``,
            ``gradients``, ``optimizer_state``, ``activations``, ``temporaries``); sums to the peak.
        peak_phase: ``forward``, ``backward`` or ``optimizer``: the phase of the winning piece (where the
            simulated peaks it was fitted on mostly were).
        paged_optimizer_bytes: Optimizer state in CUDA managed memory (``paged_adamw_8bit``), not in the peak.
        device: ``cuda`` or ``cpu``.
        engine: ``formula``.
        seconds: Wall time of the prediction.
        micro_batch: Rows per micro-batch.
        seq_len: Tokens per row.
        group: The coefficient group used (device, bits, checkpointing, DoRA).
        extrapolated: True when the model's architecture (``model_type``) is not one the coefficients were fitted
            on (Llama), or a knob the fit did not cover changed a term (``notes`` says which); its dynamic
            components are then a rougher estimate (e.g. Gemma-2: about 10-20% low).
        notes: What was extrapolated or adjusted, one phrase each.
    """

    peak_allocated_bytes: int
    breakdown: dict[str, int]
    peak_phase: str
    paged_optimizer_bytes: int
    device: str
    engine: str
    seconds: float
    micro_batch: int
    seq_len: int
    group: str
    extrapolated: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Graph:
    """Tensor sizes and architecture facts of one model + adapter (independent of bits and device)."""

    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_dim: int
    vocab: int
    quantized: tuple[tuple[int, int], ...]  # (out, in) of every linear bitsandbytes would quantize
    unquantized: tuple[int, ...]  # element counts of the other (bf16) parameters, but the next
    quantized_bias: tuple[int, ...]  # element counts of the quantized linears' biases
    buffers: tuple[int, ...]  # buffer bytes
    adapter: tuple[int, ...]  # element counts of the trainable parameters
    adapter_elem: tuple[int, ...]  # their element sizes at 16 bits (LoRA fp32, modules_to_save copies bf16)
    dropout_zero: bool  # PEFT gets dropout 0 (fused experts), whatever the spec says
    in_adapted: int
    out_adapted: int
    r_adapted: int
    dora_in: int  # in_features of the adapted layer with the largest DoRA weight-norm work
    dora_out: int  # its out_features
    adapted_weights: int  # elements of all adapted weights (sum of in x out)
    quantized_max: int  # largest quantized weight (elements)
    wrapped_weights: int = 0  # elements of parameters PEFT adapts with lora.ParamWrapper (fused experts, routers)


@dataclass(frozen=True)
class _Static:
    """Static bytes of one (model, adapter, bits, optimizer, device)."""

    graph: _Graph
    weights: int
    quant_constants: int
    adapter: int
    gradients: int
    optimizer_state: int
    paged_optimizer_bytes: int
    workspace: int  # cuBLAS workspaces (CUDA), a constant part of the temporaries


def _round(nbytes: int, block: int) -> int:
    if block <= 1 or nbytes <= 0:
        return max(nbytes, 0)
    return -(-nbytes // block) * block


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@functools.lru_cache(maxsize=64)
def _resolve(ref: str) -> Any:
    from lorabench.models import resolve_model

    return resolve_model(ref)


def _int_attr(config: Any, name: str, default: int | None = None) -> int:
    value = getattr(config, name, None)
    if value is None:
        if default is None:
            raise ConfigError(f"model config has no {name}; the formula engine needs it")
        return default
    return int(value)


@functools.lru_cache(maxsize=64)
def _graph(facts: ModelFacts) -> _Graph:
    """Every size the formula needs, from the shared module-graph facts (one meta build, cached)."""
    config = facts.config
    hidden = _int_attr(config, "hidden_size")
    heads = _int_attr(config, "num_attention_heads")
    kv_heads = _int_attr(config, "num_key_value_heads", heads)
    head_dim = _int_attr(config, "head_dim", hidden // heads)
    return _Graph(
        model_type=str(getattr(config, "model_type", "") or ""),
        hidden=hidden,
        intermediate=_moe_intermediate(config, _int_attr(config, "intermediate_size", 4 * hidden)),
        layers=_int_attr(config, "num_hidden_layers"),
        heads=heads,
        kv_dim=kv_heads * head_dim,
        vocab=_int_attr(config, "vocab_size"),
        quantized=facts.quantized,
        unquantized=facts.unquantized,
        quantized_bias=facts.quantized_bias,
        buffers=facts.buffers,
        adapter=facts.trainable,
        adapter_elem=facts.adapter_elem,
        dropout_zero=facts.dropout_zero,
        in_adapted=facts.in_adapted,
        out_adapted=facts.out_adapted,
        r_adapted=facts.r_adapted,
        dora_in=facts.dora_in,
        dora_out=facts.dora_out,
        adapted_weights=facts.adapted_weights,
        quantized_max=max((o * i for o, i in facts.quantized), default=0),
        wrapped_weights=facts.wrapped_weights,
    )


def _moe_intermediate(config: Any, dense: int) -> int:
    """Intermediate width a token really goes through: top-k routed experts (+ shared experts) for MoE models."""
    top_k = getattr(config, "num_experts_per_tok", None)
    if not top_k:
        return dense
    expert = int(getattr(config, "moe_intermediate_size", None) or dense)
    shared = int(getattr(config, "shared_expert_intermediate_size", None) or 0)
    shared += int(getattr(config, "n_shared_experts", None) or 0) * expert
    return int(top_k) * expert + shared


@functools.lru_cache(maxsize=256)
def _account(facts: ModelFacts, bits: int) -> tuple[int, int, int]:
    """``account()``'s base bytes, constant bytes and adapter bytes at ``bits``, from the same facts."""
    base = sum(c.bytes_by_bits[bits] for c in facts.components)
    constants = sum(c.constant_bytes_by_bits[bits] for c in facts.components)
    return base, constants, facts.adapter_bytes


def _quantized_bytes(out_features: int, in_features: int, bits: int, block: int) -> tuple[int, int]:
    """Weight and constant bytes of one quantized linear, each tensor rounded to ``block``."""
    numel = out_features * in_features
    if bits == 8:
        return _round(numel, block), _round(out_features * _FP32, block)
    blocks = _ceil_div(numel, 64)
    nested = _ceil_div(blocks, 256)
    constants = sum(_round(n, block) for n in (blocks, nested * _FP32, 256 * _FP32, 16 * _FP32, _FP32))
    return _round((numel + 1) // 2, block), constants


def _optimizer_bytes(
    adapter: tuple[int, ...], optimizer: str, device: str, block: int, elems: tuple[int, ...] | None = None
) -> tuple[int, int]:
    """(bytes in the peak, paged bytes) of the optimizer state for trainable tensors of ``adapter`` elements.

    ``adamw_torch``: two fp32 states (step counters on the host on CUDA); ``adamw_torch_fused``: the same, its
    0-d step counters on the device; ``adamw_8bit`` / ``paged_adamw_8bit``: bitsandbytes' blockwise uint8 states;
    ``paged_adamw_32bit``: fp32 states, paged like the 8-bit one; ``adamw_4bit``: torchao's 4-bit states (tensors
    of at least 4096 elements divisible by 128: packed nibbles + one fp32 scale per 128 + a 16-entry map; fp32
    otherwise). ``elems``: the tensors' element sizes (torch's AdamW keeps its states in the parameter's dtype,
    e.g. bf16 for a ``modules_to_save`` copy on a 16-bit base); default fp32.
    """
    sizes = elems or (_FP32,) * len(adapter)
    if optimizer in ("adamw_torch", "adamw_torch_fused"):
        on_device = optimizer == "adamw_torch_fused" or device == "cpu"  # else the counters stay on the host
        steps = len(adapter) * _round(_FP32, block) if on_device else 0
        return sum(2 * _round(n * e, block) for n, e in zip(adapter, sizes, strict=True)) + steps, 0
    if optimizer == "adamw_4bit":
        total = 0
        for n in adapter:
            if n >= _BNB_MIN_8BIT_NUMEL and n % 128 == 0:
                total += 2 * (_round(n // 2, block) + _round(n // 128 * _FP32, block) + _round(16 * _FP32, block))
            else:
                total += 2 * _round(n * _FP32, block)
        return total, 0
    eight_bit = optimizer != "paged_adamw_32bit"
    resident = _QMAP_BYTES if eight_bit else 0
    paged = 0
    for n in adapter:
        blockwise = eight_bit and n >= _BNB_MIN_8BIT_NUMEL
        state = n if blockwise else n * _FP32
        if blockwise:
            resident += 2 * _round(_ceil_div(n, _BNB_BLOCK) * _FP32, block)
        if optimizer.startswith("paged") and device == "cuda" and n >= _PAGED_MIN_NUMEL:
            paged += 2 * _round(state, block)
        else:
            resident += 2 * _round(state, block)
    return resident, paged


def optimizer_state_bytes(adapter: tuple[int, ...], optimizer: str, device: str) -> tuple[int, int]:
    """(resident, paged) optimizer-state bytes for trainable tensors of ``adapter`` elements on ``device``."""
    return _optimizer_bytes(adapter, optimizer, device, CUDA_BLOCK_BYTES if device == "cuda" else 1)


@functools.lru_cache(maxsize=1024)
def _static(
    facts: ModelFacts, bits: int, optimizer: str, device: str, gpu: str | None, pure_bf16: bool = False
) -> _Static:
    graph = _graph(facts)
    block = CUDA_BLOCK_BYTES if device == "cuda" else 1
    # k-bit preparation upcasts bf16 parameters to fp32 (not under pure_bf16); a 4-bit layer's forward casts its
    # bias back to bf16
    upcast_kbit = bits < 16 and not pure_bf16
    unquantized_elem = _FP32 if upcast_kbit else 2
    bias_elem = _FP32 if bits == 8 and upcast_kbit else 2
    if device == "cpu":
        base, constants, adapter = _account(facts, bits)
        upcast = sum(graph.unquantized) + (sum(graph.quantized_bias) if bits == 8 else 0)
        weights = base - constants + ((_FP32 - 2) * upcast if upcast_kbit else 0)
    else:
        weights = sum(_round(n * unquantized_elem, block) for n in graph.unquantized)
        weights += sum(_round(n * bias_elem, block) for n in graph.quantized_bias)
        weights += sum(_round(b, block) for b in graph.buffers)
        constants = 0
        for out_features, in_features in graph.quantized:
            if bits == 16:
                weights += _round(out_features * in_features * 2, block)
            else:
                w, c = _quantized_bytes(out_features, in_features, bits, block)
                weights += w
                constants += c
        adapter = sum(
            _round(n * _elem(e, upcast_kbit), block) for n, e in zip(graph.adapter, graph.adapter_elem, strict=True)
        )
    gradients = sum(
        _round(n * _elem(e, upcast_kbit), block) for n, e in zip(graph.adapter, graph.adapter_elem, strict=True)
    )
    elems = tuple(_elem(e, upcast_kbit) for e in graph.adapter_elem)
    optimizer_state, paged = _optimizer_bytes(graph.adapter, optimizer, device, block, elems)
    workspace = 0
    if device == "cuda":
        from lorabench.predict.memory.device import cublas_workspace_bytes

        workspace = cublas_workspace_bytes(gpu)
    return _Static(graph, weights, constants, adapter, gradients, optimizer_state, paged, workspace)


def _elem(elem: int, upcast_kbit: bool) -> int:
    """A trainable tensor's element size: as built at 16 bits (or under pure_bf16), fp32 after k-bit preparation."""
    return _FP32 if upcast_kbit else elem


def group_key(device: str, bits: int, grad_ckpt: bool, dora: bool) -> str:
    """The coefficient group of a configuration, e.g. ``cuda-4bit-ckpt-lora``."""
    return f"{device}-{bits}bit-{'ckpt' if grad_ckpt else 'nockpt'}-{'dora' if dora else 'lora'}"


_override: list[dict[str, Any]] = []


def set_coefficients(data: Mapping[str, Any] | None) -> None:
    """Use ``data`` (the coefficient file's content) instead of the packaged file; None restores it.

    For ``benchmarks/fit_formula.py`` and tests, to evaluate a fit before it is written.
    """
    _override.clear()
    if data is not None:
        _override.append(dict(data))
    coefficients.cache_clear()
    _group.cache_clear()


@functools.lru_cache(maxsize=1)
def coefficients() -> dict[str, Any]:
    """The coefficient data in use: the packaged ``formula_coefficients.json`` (loaded once) or an override.

    Raises:
        ConfigError: The file is missing or malformed (a packaging problem).
    """
    if _override:
        data = _override[0]
    else:
        try:
            text = resources.files("lorabench.predict.memory").joinpath(_COEFFICIENTS_FILE).read_text("utf-8")
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"formula engine: cannot read {_COEFFICIENTS_FILE} ({exc})") from None
    if not isinstance(data, dict) or data.get("features") != list(FEATURES) or not isinstance(data.get("groups"), dict):
        raise ConfigError(f"formula engine: {_COEFFICIENTS_FILE} does not match this lorabench's features")
    return data


_Piece = tuple[dict[str, tuple[float, ...]], str]


@functools.lru_cache(maxsize=64)
def _group(key: str) -> tuple[_Piece, ...]:
    groups: Mapping[str, Any] = coefficients()["groups"]
    if key not in groups:
        raise ConfigError(f"formula engine: no coefficients for {key}; rerun benchmarks/fit_formula.py")
    pieces: list[_Piece] = []
    for piece in groups[key]["pieces"]:
        table = piece["coefficients"]
        vectors = {name: tuple(float(table.get(name, {}).get(f, 0.0)) for f in FEATURES) for name in DYNAMIC_COMPONENTS}
        pieces.append((vectors, str(piece.get("phase", "backward"))))
    if not pieces:
        raise ConfigError(f"formula engine: no coefficients for {key}; rerun benchmarks/fit_formula.py")
    return tuple(pieces)


def _check(device: str, micro_batch: int | None, seq_len: int | None) -> None:
    if device not in ("cuda", "cpu"):
        raise ConfigError(f"device must be 'cuda' or 'cpu' (got {device!r})")
    for name, value in (("micro_batch", micro_batch), ("seq_len", seq_len)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{name} must be a positive integer (got {value!r})")


def _static_for(spec: RunSpec, device: str) -> _Static:
    from lorabench.models.facts import model_facts

    return _static(
        model_facts(spec, _resolve(spec.model)),
        spec.bits,
        spec.optimizer,
        device,
        spec.hardware.gpu if device == "cuda" else None,
        spec.pure_bf16,
    )


def _features(static: _Static, batch: int, length: int, dropout: bool, bits: int, dora: bool) -> tuple[float, ...]:
    graph = static.graph
    tokens = float(batch * length)
    layers = graph.layers
    square = float(batch * length * length)
    per_layer_in = graph.in_adapted / layers
    dora_w = graph.adapted_weights / layers if dora else 0.0
    dora_in = graph.dora_in if dora else 0
    quantities = (
        tokens * graph.hidden,
        tokens * graph.intermediate,
        tokens * graph.kv_dim,
        tokens * per_layer_in,
        tokens * per_layer_in if dropout else 0.0,
        tokens * graph.out_adapted / layers,
        tokens * graph.r_adapted / layers,
        square,
        square * graph.heads,
        dora_w,
        dora_w if dropout else 0.0,
    )
    others = layers - 1
    return (
        *(q * others for q in quantities),
        *quantities,
        tokens * graph.vocab,
        float(graph.quantized_max if bits < 16 else 0),
        float(dora_in * dora_in),
        float(dora_in * graph.dora_out),
        float(static.gradients),
        1.0,
    )


AUTOCAST_MEMORY_NOTE = (
    "autocast: memory is predicted without it (the adapters' inputs saved in fp32, no bf16 weight copies); "
    "autocast saves bf16 copies instead, so the peak is if anything lower"
)


PURE_BF16_KBIT_NOTE = (
    "pure_bf16 on a k-bit base: adapters, gradients and optimizer state are counted in bf16, but the activation "
    "terms were fitted on PEFT's fp32-upcast k-bit recipe (likely an overestimate; --engine simulate runs the "
    "pure-bf16 recipe itself)"
)


def _adjust_features(spec: RunSpec, features: list[float]) -> list[str]:
    """Adjust the features for knobs the fit did not cover (the fit used sdpa, standard loss, no offload)."""
    notes: list[str] = []
    if spec.cross_entropy == "fused":
        features[FEATURES.index("T*V")] = 0.0
        notes.append("cross_entropy fused: the fitted logits term (T*V) removed, chunk buffers not modelled")
    if spec.activation_offload:
        for index, name in enumerate(FEATURES):
            if name.endswith("*(L-1)"):
                features[index] = 0.0
        notes.append("activation_offload: the other layers' checkpoints off the device (their terms removed)")
    if spec.attention == "eager":
        notes.append("attention eager: b x heads x s^2 softmax (fp32 + bf16) added per saved layer")
    elif spec.attention == "flash_attention_2":
        notes.append("attention flash_attention_2: described by the sdpa fit (no s x s matrix either way)")
    if spec.autocast:
        notes.append(AUTOCAST_MEMORY_NOTE)
    if spec.pure_bf16 and spec.bits < 16:
        notes.append(PURE_BF16_KBIT_NOTE)
    return notes


def formula_features(
    spec: RunSpec,
    device: Literal["cuda", "cpu"] = "cuda",
    micro_batch: int | None = None,
    seq_len: int | None = None,
) -> dict[str, float]:
    """The dynamic model's feature values for a configuration (what ``benchmarks/fit_formula.py`` regresses on).

    Args:
        spec: The run spec.
        device: ``cuda`` or ``cpu``.
        micro_batch: Rows per micro-batch (default: the spec's).
        seq_len: Tokens per row (default: the spec's).

    Returns:
        Feature name to value, in :data:`FEATURES` order.

    Raises:
        ConfigError: Bad device, batch or length.
        ModelError: Unknown model or target module.
    """
    _check(device, micro_batch, seq_len)
    values = _features(
        _static_for(spec, device),
        micro_batch or spec.micro_batch,
        seq_len or spec.seq_len,
        spec.dropout > 0 and not _static_for(spec, device).graph.dropout_zero,
        spec.bits,
        spec.method == "dora",
    )
    return dict(zip(FEATURES, values, strict=True))


def static_components(spec: RunSpec, device: Literal["cuda", "cpu"] = "cuda") -> dict[str, int]:
    """Closed-form static bytes: weights, quantization constants, adapter, all gradients, optimizer state, paged.

    Raises:
        ConfigError: Bad device.
        ModelError: Unknown model or target module.
    """
    _check(device, None, None)
    static = _static_for(spec, device)
    return {
        "weights": static.weights,
        "quant_constants": static.quant_constants,
        "adapter": static.adapter,
        "gradients": static.gradients,
        "optimizer_state": static.optimizer_state,
        "paged_optimizer_bytes": static.paged_optimizer_bytes,
        "cublas_workspace_bytes": static.workspace,
    }


def formula_memory(
    spec: RunSpec,
    device: Literal["cuda", "cpu"] = "cuda",
    micro_batch: int | None = None,
    seq_len: int | None = None,
) -> FormulaResult:
    """Predict the peak of allocated bytes of one training step of ``spec`` and its breakdown, instantly.

    The first call for a model builds its module graph on the meta device (about a second for an 8B model);
    later calls take microseconds.

    Args:
        spec: The run spec (model, method, bits, rank, targets, dropout, optimizer, checkpointing,
            accumulation).
        device: The device to predict for: ``cuda`` (512-byte allocator blocks, CUDA kernels) or ``cpu``.
        micro_batch: Rows per micro-batch (default: the spec's).
        seq_len: Tokens per row (default: the spec's).

    Returns:
        The peak, its breakdown (summing to it), the phase, paged optimizer bytes and the time taken.

    Raises:
        ConfigError: Bad device, batch or length, or no coefficients for the configuration's group.
        ModelError: Unknown model or a target module the architecture does not have.
    """
    started = time.perf_counter()
    _check(device, micro_batch, seq_len)
    batch = micro_batch or spec.micro_batch
    length = seq_len or spec.seq_len
    dora = spec.method == "dora"
    static = _static_for(spec, device)
    key = group_key(device, spec.bits, spec.grad_ckpt, dora)
    features = list(
        _features(static, batch, length, spec.dropout > 0 and not static.graph.dropout_zero, spec.bits, dora)
    )
    notes = _adjust_features(spec, features)
    best: dict[str, int] = {}
    phase = "backward"
    for vectors, piece_phase in _group(key):  # the peak is the largest of the candidate moments
        dynamic = {
            name: max(0, math.ceil(sum(c * f for c, f in zip(vector, features, strict=True))))
            for name, vector in vectors.items()
        }
        if not best or sum(dynamic.values()) > sum(best.values()):
            best, phase = dynamic, piece_phase
    dynamic = best
    fitted_types = coefficients().get("model_types", ["llama"])
    extrapolated = static.graph.model_type not in fitted_types
    if extrapolated:
        notes.insert(
            0, f"model_type {static.graph.model_type!r}: coefficients fitted on {', '.join(fitted_types)} only"
        )
    if static.graph.wrapped_weights:
        # PEFT's ParamWrapper folds W + B@A into a full copy of each fused expert stack per forward, and the grouped
        # matmul keeps it for backward: one copy per layer kept (bf16, or fp32 after k-bit preparation)
        kept = 1 if spec.grad_ckpt else static.graph.layers
        elem = 2 if spec.bits == 16 else _FP32
        dynamic["activations"] += kept * static.graph.wrapped_weights // static.graph.layers * elem
        notes.append("fused experts: PEFT ParamWrapper's folded expert weights added per kept layer (not fitted)")
    if spec.attention == "eager":
        # eager attention saves the softmax (fp32) and its bf16 cast, b x heads x s x s, in every layer kept
        kept = 1 if spec.grad_ckpt else static.graph.layers
        dynamic["activations"] += kept * batch * static.graph.heads * length * length * (_FP32 + 2)
    extrapolated = extrapolated or bool(notes)
    if spec.grad_accum > 1:
        dynamic["gradients"] = static.gradients  # earlier micro-batches' gradients are live
    else:
        dynamic["gradients"] = min(dynamic["gradients"], static.gradients)
    breakdown = {
        "weights": static.weights,
        "quant_constants": static.quant_constants,
        "adapter": static.adapter,
        "gradients": dynamic["gradients"],
        "optimizer_state": static.optimizer_state,
        "activations": dynamic["activations"],
        "temporaries": dynamic["temporaries"] + static.workspace,
    }
    return FormulaResult(
        peak_allocated_bytes=sum(breakdown.values()),
        breakdown=breakdown,
        peak_phase=phase,
        paged_optimizer_bytes=static.paged_optimizer_bytes,
        device=device,
        engine="formula",
        seconds=time.perf_counter() - started,
        micro_batch=batch,
        seq_len=length,
        group=key,
        extrapolated=extrapolated,
        notes=tuple(notes),
    )
