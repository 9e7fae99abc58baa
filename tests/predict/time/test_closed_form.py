"""The closed-form op count agrees with the traced real step (tiny model)."""

from __future__ import annotations

import pytest

from lorabench.predict.time.closed_form import formula_step_ops
from lorabench.predict.time.trace import traced_step_ops
from lorabench.spec import RunSpec

# tolerances of the closed form against the trace, per class
FLOPS_TOL = 0.02
BYTES_TOL = 0.15
LAUNCH_TOL = 0.35


def _spec(**kw: object) -> RunSpec:
    base: dict[str, object] = {
        "model": "tiny",
        "method": "lora",
        "bits": 16,
        "rank": 8,
        "targets": ["q_proj", "k_proj", "v_proj"],
        "micro_batch": 2,
        "seq_len": 128,
        "grad_ckpt": True,
        "hardware": {"gpu": "H200", "count": 1},
    }
    base.update(kw)
    return RunSpec.model_validate(base)


CASES = {
    "16bit-ckpt": {},
    "16bit-nockpt-all-linear": {
        "grad_ckpt": False,
        "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "grad_accum": 2,
    },
    "4bit": {"method": "qlora", "bits": 4},
    "8bit": {"bits": 8},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_closed_form_matches_trace(name: str) -> None:
    pytest.importorskip("bitsandbytes")
    spec = _spec(**CASES[name])
    traced = traced_step_ops(spec).by_class()
    closed = formula_step_ops(spec).by_class()
    for cls, got in closed.items():
        want = traced[cls]
        for what, tol in (("flops", FLOPS_TOL), ("bytes", BYTES_TOL), ("launches", LAUNCH_TOL)):
            if cls == "optimizer" and what == "launches":
                continue  # a few foreach launches; negligible
            assert got[what] == pytest.approx(want[what], rel=tol, abs=1.0), (cls, what)


def test_closed_form_is_fast_once_the_graph_exists() -> None:
    import time

    spec = _spec()
    formula_step_ops(spec)
    started = time.perf_counter()
    ops = formula_step_ops(spec.model_copy(update={"micro_batch": 4}))
    assert time.perf_counter() - started < 0.05
    assert ops.tokens == 4 * 128


def test_autocast_moves_every_matmul_to_bf16() -> None:
    plain = formula_step_ops(RunSpec(model="tiny", rank=8, micro_batch=2, seq_len=64))
    auto = formula_step_ops(RunSpec(model="tiny", rank=8, micro_batch=2, seq_len=64, autocast=True))
    assert plain.total("flops", "matmul_fp32") > 0  # PEFT's fp32 adapters without autocast
    assert auto.total("flops", "matmul_fp32") == 0
    moved = auto.total("flops", "matmul_bf16") + auto.total("flops", "attention")
    assert moved == pytest.approx(plain.total("flops"))  # the same work, in other units
    # k-bit: the fp32 lm_head and the math-path attention become bf16 matmuls and the fused kernel
    kbit = formula_step_ops(RunSpec(model="tiny", method="qlora", bits=4, micro_batch=2, seq_len=64))
    kbit_auto = formula_step_ops(
        RunSpec(model="tiny", method="qlora", bits=4, micro_batch=2, seq_len=64, autocast=True)
    )
    assert kbit.total("flops", "attention") == 0 and kbit_auto.total("flops", "attention") > 0
    assert kbit_auto.total("flops", "matmul_fp32") == 0


def test_the_traced_step_says_it_runs_without_autocast() -> None:
    ops = traced_step_ops(RunSpec(model="tiny", micro_batch=1, seq_len=16, autocast=True))
    assert any(note.startswith("autocast:") for note in ops.notes)


def test_pure_bf16_drops_the_casts_and_the_kbit_upcast() -> None:
    spec = {"model": "tiny", "rank": 8, "micro_batch": 2, "seq_len": 64, "method": "qlora", "bits": 4}
    auto = formula_step_ops(RunSpec(**spec, autocast=True))
    pure = formula_step_ops(RunSpec(**spec, pure_bf16=True))
    assert pure.total("flops", "matmul_fp32") == 0
    assert pure.total("flops", "matmul_bf16") == pytest.approx(auto.total("flops", "matmul_bf16"))
    assert pure.total("bytes", "elementwise") < 0.7 * auto.total("bytes", "elementwise")  # bf16, no casts
    assert pure.total("bytes", "optimizer") * 2 == pytest.approx(auto.total("bytes", "optimizer"))
