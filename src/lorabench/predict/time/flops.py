"""Training FLOPs of a LoRA / QLoRA / DoRA / rsLoRA run, counted from the real module graph.

The model is built on the meta device from its config and PEFT is applied to it (as in
:mod:`lorabench.predict.memory.params`), so the shapes of the frozen linear layers and of the adapters
come from the modules transformers and PEFT really create; the config gives layers, heads,
head size and attention windows. The count is per training token, plus DoRA's per-pass work.

What is counted (a multiply-add is 2 FLOPs; only matrix multiplications, except DoRA's norm):

* **Forward, frozen base**: ``2 x in x out`` per token for every ``nn.Linear`` of the base,
  ``lm_head`` included (embeddings are lookups: 0 FLOPs); plus attention's two matmuls, ``QK^T``
  and ``AV``, ``2 x 2 x keys x heads x head_dim`` per layer per token. Attention is causal and
  flash / SDPA kernels skip fully masked blocks, so a query attends on average to half the
  sequence: ``keys = seq_len / 2`` (the causal half). A sliding-window layer (Gemma-2's local
  layers, Mistral with ``sliding_window``) attends to at most ``window`` keys:
  ``keys = window - window^2 / (2 x seq_len)`` when ``seq_len > window``.
* **Backward, frozen base**: no weight gradients, only activation gradients: ``1x`` the
  linear forward (``dX = dY W``) and ``2x`` the attention forward (``dQ, dK, dV, dP``; a flash
  kernel also recomputes ``QK^T``, which this count leaves out). The few input gradients that
  autograd could skip below the lowest adapter are counted too.
* **LoRA adapters**: ``2 x r x (in + out)`` per adapted layer per token forward, twice that
  backward (gradients of A and B, and of the adapter's input): ``3 x`` in all.
* **DoRA** as PEFT implements it (``peft.tuners.lora.dora``): once per forward pass (per micro
  batch, not per token) each adapted layer materialises ``BA`` by pushing an ``in x in`` identity
  through ``lora_A`` then ``lora_B`` (``2 x r x in x (in + out)``), forms ``W + scale x BA`` and
  its row norms (``~4 x in x out``: scale, add, square, sum). The norm is detached, so backward
  does not redo it. With LoRA dropout > 0 in training, PEFT also recomputes the base layer on the
  dropped-out input (``F.linear(dropout(x), W)``): ``2 x in x out`` more per token forward and as
  much backward (input gradient).
* **Gradient checkpointing** (Hugging Face's, per decoder layer): backward recomputes the forward
  of every checkpointed decoder layer once more, adapters and DoRA's per-pass work included;
  ``lm_head`` and the final norm sit outside the checkpointed layers and are not recomputed.

Not counted: norms, activations, softmax, rotary embeddings, the loss, the optimizer step and
bitsandbytes' dequantization (these run on CUDA cores or are memory bound; the efficiency factor
of :mod:`lorabench.predict.time.efficiency` absorbs them). The base's bits do not change the FLOP count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lorabench.errors import ConfigError, ModelError
from lorabench.models import ResolvedModel, resolve_model
from lorabench.models.facts import AdapterFact, LinearFact, model_facts
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from lorabench.models.facts import ConfigFacts

__all__ = ["ATTENTION_BACKWARD_FACTOR", "LINEAR_BACKWARD_FACTOR", "FlopsBreakdown", "training_flops"]

# Backward / forward FLOPs with a frozen base: activation gradients only.
LINEAR_BACKWARD_FACTOR = 1.0  # dX = dY W; no dW since the base is frozen
ATTENTION_BACKWARD_FACTOR = 2.0  # dQ, dK (from dS) and dV, dP (from dO): 4 matmuls against the forward's 2
_ADAPTER_PASSES = 3  # LoRA A/B: forward 1x, backward 2x (weight gradients and input gradients)
_DORA_NORM_OPS = 4  # per weight element: scale BA, add W, square, sum


@dataclass(frozen=True)
class FlopsBreakdown:
    """FLOPs of one training configuration, per processed token and per micro-batch pass.

    All ``*_per_token`` figures are per token processed (padding included, when sequences are
    padded). A micro-batch pass is one forward and backward of one micro batch on one GPU: an
    optimizer step is ``grad_accum`` passes on each GPU.

    Attributes:
        method: The adapter method of the spec (``lora``, ``qlora``, ``dora``, ``rslora``).
        seq_len: Sequence length the attention term was computed for.
        grad_ckpt: Whether gradient checkpointing's recomputation is included.
        linear_forward_per_token: ``2 x`` the weights of every base ``nn.Linear`` (``lm_head`` included).
        attention_forward_per_token: ``QK^T`` and ``AV`` over the causal half (or the window).
        forward_per_token: Base forward: linear plus attention.
        backward_per_token: Base backward, activation gradients only (frozen base).
        recompute_per_token: Gradient checkpointing's second forward of the decoder layers (with
            their adapters); 0 without checkpointing.
        adapter_per_token: LoRA A/B forward and backward (``3 x 2r(in + out)`` per adapted layer).
        dora_per_token: DoRA's per-token extra (PEFT's second base matmul on the dropped-out input,
            forward and backward); 0 for other methods or without dropout.
        total_per_token: Sum of the per-token terms (forward, backward, recompute, adapter, DoRA);
            excludes the per-pass term.
        dora_per_micro_batch: DoRA's per-pass weight-norm work (``BA`` and ``||W + scale BA||``), twice
            under checkpointing; 0 for other methods.
        adapted_layers: Number of linear layers PEFT adapted.
        linear_layers: Number of base ``nn.Linear`` layers counted.
    """

    method: str
    seq_len: int
    grad_ckpt: bool
    linear_forward_per_token: float
    attention_forward_per_token: float
    forward_per_token: float
    backward_per_token: float
    recompute_per_token: float
    adapter_per_token: float
    dora_per_token: float
    total_per_token: float
    dora_per_micro_batch: float
    adapted_layers: int
    linear_layers: int

    def flops_for(self, tokens: int, micro_batches: int) -> float:
        """Total FLOPs for ``tokens`` processed tokens in ``micro_batches`` micro-batch passes."""
        return tokens * self.total_per_token + micro_batches * self.dora_per_micro_batch

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


# The module-graph records are the shared facts' own (one definition for every engine).
_Linear = LinearFact
_Adapter = AdapterFact


def _graph(spec: RunSpec, resolved: ResolvedModel) -> tuple[list[_Linear], list[_Adapter]]:
    """Base linears and adapters of ``spec``'s meta model with PEFT applied (shared facts, built once and cached)."""
    facts = model_facts(spec, resolved)
    return list(facts.linears), list(facts.adapters)


def _layer_windows(config: PretrainedConfig | ConfigFacts, layers: int) -> list[int | None]:
    """Attention window of each decoder layer (None: full causal attention), from the config."""
    window = getattr(config, "sliding_window", None)
    window = window if isinstance(window, int) and window > 0 else None
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, (list, tuple)) and len(layer_types) == layers:
        return [window if kind == "sliding_attention" else None for kind in layer_types]
    if window is not None and getattr(config, "use_sliding_window", True) is not False:
        return [window] * layers
    return [None] * layers


def _mean_keys(seq_len: int, window: int | None) -> float:
    """Keys a query attends to on average: the causal half, capped by a sliding window."""
    if window is None or seq_len <= window:
        return seq_len / 2
    return window - window * window / (2 * seq_len)


def _config_int(config: PretrainedConfig | ConfigFacts, name: str) -> int:
    value = getattr(config, name, None)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        kind = getattr(config, "class_name", type(config).__name__)
        raise ModelError(f"{kind} has no positive integer {name} (got {value!r}); cannot count FLOPs")
    return value


def _attention_forward(config: PretrainedConfig | ConfigFacts, seq_len: int) -> float:
    layers = _config_int(config, "num_hidden_layers")
    heads = _config_int(config, "num_attention_heads")
    has_head_dim = isinstance(getattr(config, "head_dim", None), int)
    head_dim = _config_int(config, "head_dim") if has_head_dim else _config_int(config, "hidden_size") // heads
    # QK^T and AV: 2 matmuls x 2 FLOPs per multiply-add x keys x (heads x head_dim), per layer per token.
    return sum(4 * heads * head_dim * _mean_keys(seq_len, w) for w in _layer_windows(config, layers))


def _dora_norm_flops(adapter: _Adapter) -> float:
    """One forward's DoRA weight norm: ``BA`` through an identity, then ``||W + scale x BA||`` row-wise."""
    a = adapter
    materialise = 2 * a.rank * a.in_features * (a.in_features + a.out_features)
    return float(materialise + _DORA_NORM_OPS * a.in_features * a.out_features)


def training_flops(spec: RunSpec, seq_len: int | None = None, model: ResolvedModel | None = None) -> FlopsBreakdown:
    """Count the training FLOPs of a spec per processed token (and DoRA's per-pass work).

    Args:
        spec: The run spec (model, method, rank, targets, dropout and grad_ckpt matter).
        seq_len: Sequence length for the attention term; defaults to ``spec.seq_len``.
        model: An already resolved model, to skip resolving ``spec.model`` again.

    Returns:
        The breakdown; see the module docstring for what each term counts.

    Raises:
        ConfigError: ``seq_len`` is not a positive integer.
        ModelError: Unknown model, or a target module the architecture does not have.
    """
    length = spec.seq_len if seq_len is None else seq_len
    if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
        raise ConfigError(f"seq_len: must be a positive integer (got {length!r})")
    resolved = model or resolve_model(spec.model)
    linears, adapters = _graph(spec, resolved)

    linear_fwd = float(sum(2 * lin.in_features * lin.out_features for lin in linears))
    ckpt_linear_fwd = float(sum(2 * lin.in_features * lin.out_features for lin in linears if lin.checkpointed))
    attention_fwd = _attention_forward(model_facts(spec, resolved).config, length)
    forward = linear_fwd + attention_fwd
    backward = LINEAR_BACKWARD_FACTOR * linear_fwd + ATTENTION_BACKWARD_FACTOR * attention_fwd

    adapter_fwd = [2.0 * a.rank * (a.in_features + a.out_features) for a in adapters]
    adapter = _ADAPTER_PASSES * sum(adapter_fwd)
    # PEFT's DoRA with dropout recomputes the base layer on the dropped-out input: forward + input gradient.
    dora_fwd = [2.0 * a.in_features * a.out_features if a.dora and a.dropout else 0.0 for a in adapters]
    dora_token = (1 + LINEAR_BACKWARD_FACTOR) * sum(dora_fwd)
    dora_norm = [_dora_norm_flops(a) if a.dora else 0.0 for a in adapters]
    dora_pass = sum(dora_norm)

    recompute = 0.0
    if spec.grad_ckpt:
        recompute = ckpt_linear_fwd + attention_fwd
        recompute += sum(f + d for a, f, d in zip(adapters, adapter_fwd, dora_fwd, strict=True) if a.checkpointed)
        # the recomputed forward redoes DoRA's weight norm
        dora_pass += sum(n for a, n in zip(adapters, dora_norm, strict=True) if a.checkpointed)
    return FlopsBreakdown(
        method=spec.method,
        seq_len=length,
        grad_ckpt=spec.grad_ckpt,
        linear_forward_per_token=linear_fwd,
        attention_forward_per_token=attention_fwd,
        forward_per_token=forward,
        backward_per_token=backward,
        recompute_per_token=recompute,
        adapter_per_token=adapter,
        dora_per_token=dora_token,
        total_per_token=forward + backward + recompute + adapter + dora_token,
        dora_per_micro_batch=dora_pass,
        adapted_layers=len(adapters),
        linear_layers=len(linears),
    )
