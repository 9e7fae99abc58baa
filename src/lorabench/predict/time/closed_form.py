"""The ops of one training step in closed form, from the module graph: the ``formula`` time engine.

Builds on :mod:`lorabench.predict.time.flops`' graph (the base ``nn.Linear`` layers and PEFT adapters of
the real model built on the meta device, plus the config's layers, heads, head size and vocabulary) and
counts, per micro batch of ``T = micro_batch x seq_len`` tokens, the same op classes the traced step
(:mod:`lorabench.predict.time.trace`) records, with what the recipe and the libraries do:

* activations are bf16 (2 bytes) in 16-bit runs and fp32 (4 bytes) in k-bit runs (PEFT's
  ``prepare_model_for_kbit_training`` casts norms, embeddings and ``lm_head`` to fp32, so the residual
  stream and ``lm_head``'s matmul are fp32); adapters are fp32 (PEFT's ``autocast_adapter_dtype``);
* base linears: 16-bit one bf16 matmul per pass; 4-bit a dequantization (packed weight + constants read,
  bf16 weight written) then a bf16 matmul per pass (bitsandbytes' fused kernel when few rows); 8-bit
  forward: activation quantization (with the outlier scan), int8 matmul, int32 -> fp16 dequantization and
  a cast; 8-bit backward: the int8 weight copied to the activations' dtype (fp32 after the k-bit
  preparation), scaled, and one matmul in that dtype;
* attention: the fused SDPA kernel for bf16 (``2.5x`` backward), the math path for fp32 activations with
  grouped-query attention (fp32 ``bmm`` + softmax on ``heads x s x s``);
* elementwise: the HF Llama-family decoder's norms, rotary, residual adds, SiLU-gate, casts, LoRA dropout,
  scaling and add, the loss on fp32 logits; backward ``BACKWARD_ELEMENTWISE`` times the forward's bytes;
* gradient checkpointing: one more forward of every checkpointed layer (adapters included), less the
  MLP's down projection in 16-bit runs (non-reentrant checkpointing stops recomputing before it);
* DoRA (PEFT): per forward, ``BA`` through an identity, the weight norm (+ the weight's dequantization
  at k bits), and with dropout the base layer re-run on the dropped-out input;
* optimizer: ``torch._foreach_*`` AdamW, 13 passes over the fp32 trainable parameters;
* ``autocast`` (the HF Trainer's ``bf16: true``): every matmul runs in bf16 -- the adapters' (PEFT still
  casts their input to fp32, then autocast casts it and the fp32 weights to bf16), the k-bit recipe's fp32
  ``lm_head`` (its weight cast each forward) and 8-bit backward's -- and attention takes the fused bf16
  kernel in k-bit runs too; the elementwise ops keep the recipe's activation dtype;
* ``pure_bf16``: adapters in bf16 with no casts around them, and a k-bit base without PEFT's fp32 upcast, so
  activations, ``lm_head`` and attention are bf16 as in a 16-bit run.

Agreement with the trace is tested on the tiny and small models (``tests/predict/time/test_closed_form.py``):
matmul FLOPs within 2%, bytes and launches per class within the tolerances the tests state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lorabench.models import ResolvedModel, resolve_model
from lorabench.predict.time.flops import _Adapter, _config_int, _graph, _layer_windows, _Linear
from lorabench.predict.time.ops import ATTENTION_BACKWARD_FACTOR, Op, OpClass, StepOps, aggregate
from lorabench.spec import RunSpec

__all__ = ["BACKWARD_ELEMENTWISE", "formula_step_ops"]

BACKWARD_ELEMENTWISE = 1.6  # backward elementwise bytes / forward's (from the tiny model's trace)
_BACKWARD_LAUNCHES = 1.2  # backward elementwise launches / forward's
_ADAM_PASSES = 13  # fp32 passes over the trainable parameters of torch's foreach AdamW step
_ADAM_OPS = 8
_FOREACH_CHUNK = 32
_GEMM4_FUSED_MAX_ROWS = 4  # bitsandbytes' 4-bit inference kernel (not taken in training at real sizes)


@dataclass(frozen=True)
class _Shape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    windows: tuple[int | None, ...]


_GRAPHS: dict[str, tuple[tuple[_Linear, ...], tuple[_Adapter, ...], _Shape]] = {}
_GRAPH_CACHE_SIZE = 64


def _cached_graph(spec: RunSpec) -> tuple[tuple[_Linear, ...], tuple[_Adapter, ...], _Shape]:
    """The graph of ``spec``'s model and adapter, built once per model / adapter configuration."""
    key = spec.model_dump_json(exclude={"hardware", "micro_batch", "seq_len", "grad_accum", "parallelism", "epochs"})
    found = _GRAPHS.get(key)
    if found is None:
        if len(_GRAPHS) >= _GRAPH_CACHE_SIZE:
            _GRAPHS.clear()
        found = _GRAPHS[key] = _graph_and_shape(spec, resolve_model(spec.model))
    return found


def _graph_and_shape(
    spec: RunSpec, resolved: ResolvedModel
) -> tuple[tuple[_Linear, ...], tuple[_Adapter, ...], _Shape]:
    from lorabench.models.facts import model_facts

    config = model_facts(spec, resolved).config  # the shared facts: no transformers import when cached
    linears, adapters = _graph(spec, resolved)
    layers = _config_int(config, "num_hidden_layers")
    heads = _config_int(config, "num_attention_heads")
    hidden = _config_int(config, "hidden_size")
    head_dim = getattr(config, "head_dim", None)
    head_dim = head_dim if isinstance(head_dim, int) and head_dim > 0 else hidden // heads
    kv = getattr(config, "num_key_value_heads", None)
    shape = _Shape(
        layers=layers,
        hidden=hidden,
        intermediate=_config_int(config, "intermediate_size"),
        heads=heads,
        kv_heads=kv if isinstance(kv, int) and kv > 0 else heads,
        head_dim=head_dim,
        vocab=_config_int(config, "vocab_size"),
        windows=tuple(_layer_windows(config, layers)),
    )
    return tuple(linears), tuple(adapters), shape


def _linear_ops(
    lin: _Linear, tokens: int, bits: int, act: int, lm_head: bool, autocast: bool = False
) -> tuple[list[Op], list[Op]]:
    """Forward and backward (input gradient) ops of one frozen base linear."""
    n, k = lin.out_features, lin.in_features
    flops = 2.0 * tokens * n * k
    small = min(tokens, n, k)
    x, y = float(tokens * k), float(tokens * n)
    if lm_head or bits == 16:
        if autocast and act == 4:  # the fp32 lm_head under autocast: weight and input cast, one bf16 matmul
            cast = [
                Op("elementwise", 0.0, 6.0 * n * k, name="_to_copy"),
                Op("elementwise", 0.0, 6.0 * x, name="_to_copy"),
            ]
            mm = Op("matmul_bf16", flops, 2 * (x + y) + 2.0 * n * k, small, name="mm")
            return [*cast, mm], [mm, Op("elementwise", 0.0, 6.0 * x, name="_to_copy")]
        cls: OpClass = "matmul_fp32" if act == 4 else "matmul_bf16"
        w = act * n * k
        fwd = [Op(cls, flops, act * (x + y) + w, small, name="mm")]
        bwd = [Op(cls, flops, act * (x + y) + w, small, name="mm")]
        return fwd, bwd
    casts = [
        Op("elementwise", 0.0, x * (act + 2), name="_to_copy"),
        Op("elementwise", 0.0, y * (2 + act), name="_to_copy"),
    ]
    if bits == 4:
        from lorabench.predict.memory.bnb_rules import gemm_4bit_dequantizes as _gemm_4bit_dequantizes

        packed = n * k / 2 + n * k / 16  # NF4 codes + absmax bytes
        mm = Op("matmul_bf16", flops, 2 * (x + y) + 2.0 * n * k, small, name="mm")
        if _gemm_4bit_dequantizes("cuda", tokens, (n, k), 64):
            forward = [Op("dequant", 0.0, packed + 2.0 * n * k, launches=2.0, name="dequantize_4bit"), mm]
        else:  # bitsandbytes' fused 4-bit kernel (few rows): reads the packed weight once
            forward = [Op("dequant", flops, 2 * (x + y) + packed, small, name="gemm_4bit_fused")]
        bwd_dq = [
            Op("dequant", 0.0, n * k / 64 * 5, name="dequantize_blockwise"),
            Op("elementwise", 0.0, n * k / 64 * 12, name="add"),
            Op("dequant", 0.0, packed + 2.0 * n * k, name="dequantize_4bit"),
        ]
        return [*casts, *forward], [*casts, *bwd_dq, mm]
    # LLM.int8: quantize activations (+ outlier scan), int8 matmul, dequantize the int32 result, cast
    fwd = [
        *casts,
        Op("dequant", 0.0, x * (2 + 1) + 4 * tokens + 2 * x * 2, launches=3.0, name="int8_vectorwise_quant"),
        Op("matmul_int8", flops, x + n * k + 4 * y, small, name="int8_mixed_scaled_mm"),
        Op("dequant", 0.0, 6 * y + 4.0 * (tokens + n), name="int8_mm_dequant"),
    ]
    # backward (bitsandbytes' MatMul8bitLt): the int8 weight copied to the input's dtype, scaled, one matmul
    # (bf16 under autocast)
    mm_act = 2 if autocast else act
    mm_cls: OpClass = "matmul_fp32" if mm_act == 4 else "matmul_bf16"
    bwd = [
        Op("dequant", 0.0, (1.0 + mm_act) * n * k, name="_to_copy"),
        Op("elementwise", 0.0, 8.0 * n, launches=2.0, name="mul"),
        Op("elementwise", 0.0, 2.0 * mm_act * n * k + 4 * n, name="mul_"),
        Op(mm_cls, flops, mm_act * (x + y + n * k), small, name="mm"),
    ]
    return fwd, bwd


def _lora_matmuls(a: _Adapter, tokens: int, cls: OpClass, elem: int) -> tuple[list[Op], list[Op]]:
    """An adapter's forward matmuls (``A``, ``B``) and backward ones (``dB``, ``dH``, ``dA``, ``dX``)."""
    r, k, n = a.rank, a.in_features, a.out_features
    x, y, h = float(tokens * k), float(tokens * n), float(tokens * r)
    on_a = Op(cls, 2.0 * tokens * r * k, elem * (x + h + r * k), min(tokens, r, k), name="mm")
    on_b = Op(cls, 2.0 * tokens * r * n, elem * (h + y + r * n), min(tokens, r, n), name="mm")
    return [on_a, on_b], [on_b, on_b, on_a, on_a]


def _adapter_ops(
    a: _Adapter, tokens: int, act: int, autocast: bool = False, pure: bool = False
) -> tuple[list[Op], list[Op]]:
    """Forward and backward ops of one LoRA adapter: dropout, casts, ``A``, ``B``, scale, add.

    PEFT's default (fp32 weights, no autocast): the input cast to fp32, fp32 matmuls, the result cast back.
    ``autocast``: PEFT still casts the input to fp32, autocast casts it and the weights to bf16, bf16 matmuls.
    ``pure`` (bf16 weights like the input): no casts at all.
    """
    r, k, n = a.rank, a.in_features, a.out_features
    x, y = float(tokens * k), float(tokens * n)
    drop = x * (5 if pure else 2 * act + 1)  # input, output and the 1-byte mask
    fwd: list[Op] = [Op("elementwise", 0.0, drop, name="native_dropout")] if a.dropout else []
    bwd_tail: list[Op] = [Op("elementwise", 0.0, drop, name="native_dropout_backward")] if a.dropout else []
    if pure:
        mm_fwd, mm_bwd = _lora_matmuls(a, tokens, "matmul_bf16", 2)
        fwd += [*mm_fwd, Op("elementwise", 0.0, 4 * y, name="mul"), Op("elementwise", 0.0, 6 * y, name="add")]
        bwd = [
            *mm_bwd,
            Op("elementwise", 0.0, 6 * y, name="mul"),
            Op("elementwise", 0.0, 6 * x, name="add"),  # dX into the base layer's input gradient
        ]
        return fwd, bwd + bwd_tail
    to_fp32 = [Op("elementwise", 0.0, x * (act + 4), name="_to_copy")] if act != 4 else []  # PEFT: input to fp32
    if autocast:
        mm_fwd, mm_bwd = _lora_matmuls(a, tokens, "matmul_bf16", 2)
        fwd += [
            *to_fp32,
            Op("elementwise", 0.0, 6.0 * (x + r * k + r * n), launches=3.0, name="_to_copy"),  # autocast: x, A, B
            *mm_fwd,
            Op("elementwise", 0.0, 4 * y, name="mul"),
            Op("elementwise", 0.0, y * (act + 2 + act), name="add"),
        ]
        bwd = [
            *mm_bwd,
            Op("elementwise", 0.0, 6 * y, name="mul"),
            Op("elementwise", 0.0, 6.0 * (r * k + r * n), launches=2.0, name="_to_copy"),  # bf16 grads to fp32
            Op("elementwise", 0.0, x * 6 + (x * (act + 4) if act != 4 else 0.0), launches=2.0, name="_to_copy"),
        ]
        return fwd, bwd + bwd_tail
    mm_fwd, mm_bwd = _lora_matmuls(a, tokens, "matmul_fp32", 4)
    fwd += [
        *to_fp32,
        *mm_fwd,
        Op("elementwise", 0.0, 8 * y, name="mul"),
        Op("elementwise", 0.0, y * (act + 8), name="add"),
    ]
    if act != 4:
        fwd.append(Op("elementwise", 0.0, y * (4 + act), name="_to_copy"))
    bwd = [
        *mm_bwd,
        Op("elementwise", 0.0, 12 * y, name="mul"),
        Op("elementwise", 0.0, x * (act + 4) + 3 * act * x, launches=2.0, name="_to_copy"),
    ]
    return fwd, bwd + bwd_tail


def _dora_ops(a: _Adapter, tokens: int, bits: int) -> list[Op]:
    """PEFT DoRA's per-forward work: ``BA`` through an identity, ``||W + s BA||`` (and the dropout re-run)."""
    r, k, n = a.rank, a.in_features, a.out_features
    w = float(k * n)
    ops = [
        Op("matmul_fp32", 2.0 * r * k * k, 4.0 * (k * k + r * k), min(r, k), name="mm"),
        Op("matmul_fp32", 2.0 * r * k * n, 4.0 * (k * r + r * n + w), min(r, k, n), name="mm"),
        Op("elementwise", 0.0, 20.0 * w, launches=5.0, name="weight_norm"),
    ]
    if bits < 16:
        ops.append(Op("dequant", 0.0, w * (0.5 + 2) if bits == 4 else w * (1 + 4), name="dequantize"))
    if a.dropout:  # PEFT recomputes the base layer on the dropped-out input: forward + input gradient
        ops.append(Op("matmul_bf16", 2.0 * tokens * w, 2.0 * (tokens * (k + n) + w), min(tokens, k, n), 2.0, name="mm"))
    return ops


def _attention_ops(s: _Shape, batch: int, seq: int, act: int, window: int | None) -> tuple[list[Op], list[Op]]:
    keys = seq if window is None else min(seq, window)
    h, d = s.heads, s.head_dim
    if act == 2 or (s.kv_heads == s.heads and act == 4):
        flops = 4.0 * batch * h * seq * keys * d * (0.5 if window is None or seq <= window else 1.0)
        q = float(batch * h * seq * d * act)
        kv = float(2 * batch * s.kv_heads * keys * d * act)
        return (
            [Op("attention", flops, 2 * q + kv, d, name="sdpa_forward")],
            [Op("attention", ATTENTION_BACKWARD_FACTOR * flops, 4 * q + 2 * kv, d, name="sdpa_backward")],
        )
    # math path (fp32 with grouped-query attention): k/v repeated, two fp32 bmm, mask, softmax on h x s x s
    scores = float(batch * h * seq * seq)
    qd = float(batch * h * seq * d)
    mm = 2.0 * batch * h * seq * seq * d
    fwd = [
        Op("elementwise", 0.0, 2 * 8 * qd, launches=2.0, name="clone"),
        Op("matmul_fp32", mm, 4 * (2 * qd + scores), min(seq, d), name="bmm"),
        Op("elementwise", 0.0, 9 * scores + seq * seq, launches=4.0, name="where"),
        Op("elementwise", 0.0, 8 * scores, name="_safe_softmax"),
        Op("matmul_fp32", mm, 4 * (2 * qd + scores), min(seq, d), name="bmm"),
    ]
    bwd = [
        Op("matmul_fp32", mm, 4 * (2 * qd + scores), min(seq, d), count=4.0, name="bmm"),
        Op("elementwise", 0.0, 12 * scores, name="_softmax_backward_data"),
        Op("elementwise", 0.0, 8 * scores, name="mul"),
        Op("elementwise", 0.0, 2 * 8 * qd, launches=2.0, name="sum"),
    ]
    return fwd, bwd


def _layer_elementwise(s: _Shape, tokens: int, act: int) -> list[Op]:
    """Forward elementwise ops of one decoder layer (norms, rotary, residuals, gate), adapters apart."""
    t = float(tokens)
    q, kv, hid, inter = s.heads * s.head_dim, s.kv_heads * s.head_dim, s.hidden, s.intermediate
    norm = t * hid * (5 * act + 32)
    return [
        Op("elementwise", 0.0, norm, launches=7.0, name="rms_norm"),
        Op("elementwise", 0.0, norm, launches=7.0, name="rms_norm"),
        Op("elementwise", 0.0, 12 * act * t * (q + kv), launches=10.0, name="rotary"),
        Op("elementwise", 0.0, 6 * act * t * hid, launches=2.0, name="add"),
        Op("elementwise", 0.0, 5 * act * t * inter, launches=2.0, name="silu_mul"),
        Op("elementwise", 0.0, 2 * act * t * q, name="clone"),
    ]


def _scaled(ops: list[Op], bytes_factor: float, launch_factor: float) -> list[Op]:
    return [
        Op(op.cls, op.flops, op.bytes * bytes_factor, op.min_dim, op.count, op.launches * launch_factor, op.name)
        for op in ops
    ]


def formula_step_ops(spec: RunSpec, model: ResolvedModel | None = None) -> StepOps:
    """Count one optimizer step's ops on one GPU in closed form (no simulation).

    Raises:
        ModelError: Unknown model, target module or config field.
    """
    if model is None:
        linears, adapters, s = _cached_graph(spec)
    else:
        linears, adapters, s = _graph_and_shape(spec, model)
    pure = spec.pure_bf16
    act = 2 if spec.bits == 16 or pure else 4  # pure_bf16: no fp32 upcast of the k-bit recipe
    autocast = spec.autocast or pure  # every matmul bf16 either way
    batch, seq = spec.micro_batch, spec.seq_len
    tokens = batch * seq
    per_pass: list[Op] = []  # everything once per micro batch
    fwd_ckpt: list[Op] = []  # forward work inside checkpointed layers (recomputed)
    adapted_down = any((a.in_features, a.out_features) == (s.intermediate, s.hidden) for a in adapters)
    for lin in linears:
        fwd, bwd = _linear_ops(lin, tokens, spec.bits, act, lm_head=not lin.checkpointed, autocast=autocast)
        per_pass += fwd + bwd
        # 16-bit checkpointing is non-reentrant: its recomputation stops once every tensor backward needs is
        # rebuilt, before the layer's last linear (the MLP's down projection) unless an adapter reads its input
        early_stop = spec.bits == 16 and (lin.in_features, lin.out_features) == (s.intermediate, s.hidden)
        if lin.checkpointed and not (early_stop and not adapted_down):
            fwd_ckpt += fwd
    for adapter in adapters:
        fwd, bwd = _adapter_ops(adapter, tokens, act, autocast, pure)
        if adapter.dora:
            fwd += _dora_ops(adapter, tokens, spec.bits)
        per_pass += fwd + bwd
        if adapter.checkpointed:
            fwd_ckpt += fwd
    for window in s.windows:
        fwd, bwd = _attention_ops(s, batch, seq, 2 if autocast else act, window)  # autocast: fused bf16 sdpa
        elementwise = _layer_elementwise(s, tokens, act)
        per_pass += fwd + bwd + elementwise + _scaled(elementwise, BACKWARD_ELEMENTWISE, _BACKWARD_LAUNCHES)
        fwd_ckpt += fwd + elementwise
    t, v = float(tokens), float(s.vocab)
    logits_cast = 0.0 if act == 4 else 12 * t * v  # logits.float() and its gradient back to bf16
    per_pass += [
        Op("elementwise", 0.0, t * s.hidden * act + 8 * t, name="embedding"),
        Op("elementwise", 0.0, t * s.hidden * (5 * act + 32), launches=7.0, name="rms_norm"),
        Op("elementwise", 0.0, 32 * t * v + logits_cast, launches=6.0, name="cross_entropy"),
    ]
    if spec.grad_ckpt:
        per_pass += fwd_ckpt
    trainable = sum(a.rank * (a.in_features + a.out_features) for a in adapters)
    tensors = 2 * len(adapters)
    optimizer = Op(
        "optimizer",
        0.0,
        _ADAM_PASSES * (2.0 if pure else 4.0) * trainable,  # AdamW's state has the adapters' dtype
        launches=float(_ADAM_OPS * math.ceil(2 * tensors / _FOREACH_CHUNK)),
        name="adamw_foreach",
    )
    return StepOps(
        ops=(*aggregate(per_pass, float(spec.grad_accum)), optimizer),
        tokens=tokens * spec.grad_accum,
        micro_batches=spec.grad_accum,
        engine="formula",
        notes=(
            "closed form of the HF Llama-family decoder's ops (other architectures: their extra norms / "
            "activations are not counted)",
        ),
    )
