from __future__ import annotations

import pytest
import torch

from lorabench.models import resolve_model
from lorabench.models.load import cpu_native_bf16, load_for_training, training_dtype
from lorabench.spec import RunSpec


@pytest.mark.parametrize("bits", [16, 8, 4])
def test_cpu_dtype_rule_is_the_same_at_every_bit_width(bits: int) -> None:
    forced = training_dtype(bits, "cpu", "fp32")
    assert forced.dtype == torch.float32 and forced.reason.endswith("fp32 forced on CPU (--cpu-dtype fp32)")
    assert training_dtype(bits, "cpu", "bf16").dtype == torch.bfloat16
    native, _ = cpu_native_bf16()
    assert training_dtype(bits, "cpu").dtype == (torch.bfloat16 if native else torch.float32)
    assert training_dtype(bits, "cuda", "fp32").dtype == torch.bfloat16  # GPUs unchanged
    if bits < 16:
        assert forced.reason.startswith(f"{bits}-bit base, {'int8' if bits == 8 else 'NF4'} weights")
        assert ("4-bit compute" in forced.reason) == (bits == 4)


def test_4bit_cpu_base_computes_in_the_cpu_dtype() -> None:
    import bitsandbytes as bnb

    spec = RunSpec(model="tiny", bits=4)
    dtype = training_dtype(4, "cpu", "fp32").dtype
    model = load_for_training(resolve_model("tiny"), spec, torch.device("cpu"), True, 0, dtype=dtype)
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and {m.compute_dtype for m in quantized} == {torch.float32}
    assert model.get_input_embeddings().weight.dtype == torch.float32  # an unquantized layer
    model.train()  # training path (bitsandbytes' eval-only CPU weight packing is not what a run uses)
    logits = model(torch.tensor([[1, 2, 3, 4]])).logits
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
