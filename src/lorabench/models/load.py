"""Load a causal LM for real training: local weights, or random weights built from the config.

Resource use does not depend on weight values, so a model built from its config with random
weights measures the same memory and time as the released checkpoint; that is how ``tiny`` runs
here, and how a GPU user can measure Llama-3.1-8B without downloading it (``--random-weights``).
Quantized bases always go through transformers' real ``from_pretrained`` + bitsandbytes path
(random weights are saved as safetensors first), so the layers are exactly what users get.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from lorabench.errors import ModelError
from lorabench.methods import quantization_config
from lorabench.models.build import quiet_hf
from lorabench.models.catalog import ResolvedModel
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "BUILT_IN_RANDOM",
    "CpuDtype",
    "TrainingDtype",
    "cpu_native_bf16",
    "has_local_weights",
    "load_for_training",
    "training_dtype",
]

# Catalog models that exist only as configs: they always train with random weights.
BUILT_IN_RANDOM = frozenset({"tiny"})

CpuDtype = Literal["auto", "bf16", "fp32"]
# CPU flags (Linux /proc/cpuinfo) that mean bf16 matmuls run natively rather than emulated in fp32.
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@dataclass(frozen=True)
class TrainingDtype:
    """The dtype a base model is loaded in for training, and why (recorded in run records)."""

    dtype: torch.dtype
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready: ``{"dtype": "bfloat16" | "float32", "reason": ...}``."""
        return {"dtype": str(self.dtype).removeprefix("torch."), "reason": self.reason}


def cpu_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and the evidence.

    x86 CPUs with AVX512_BF16 or AMX_BF16 (and Arm CPUs with the BF16 extension) run bf16 matmuls natively;
    others (AVX2-only x86, for example) emulate them, which is many times slower than fp32.

    Args:
        cpuinfo: The kernel's CPU description (Linux); unreadable means "not known to be native".

    Returns:
        ``(native, evidence)``.
    """
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        capability = torch.backends.cpu.get_cpu_capability()
        return False, f"CPU flags unreadable ({cpuinfo}); PyTorch CPU capability {capability}"
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    found = [flag for flag in _NATIVE_BF16_FLAGS if flag in flags]
    if found:
        return True, f"CPU flags {', '.join(found)}"
    return False, f"no native bf16 CPU flag ({', '.join(_NATIVE_BF16_FLAGS)}) in {cpuinfo}"


def training_dtype(bits: int, device_type: str, cpu_dtype: CpuDtype = "auto") -> TrainingDtype:
    """The dtype the base model is loaded in for training on ``device_type``.

    GPUs: bf16. CPUs: bf16 where the CPU computes it natively (or ``cpu_dtype="bf16"`` forces it), else
    fp32 -- emulated bf16 is many times slower, and fp32 gives the same trained adapter semantics at twice
    the weight memory. 8/4-bit bases follow the same rule for the layers bitsandbytes leaves unquantized and,
    at 4 bits, for bitsandbytes' compute dtype (``bnb_4bit_compute_dtype``; :func:`load_for_training`
    applies it); the quantized weights themselves stay int8 / NF4.

    Args:
        bits: The spec's base bits.
        device_type: ``cuda`` or ``cpu``.
        cpu_dtype: ``auto`` (detect), ``bf16`` or ``fp32`` (force, CPU only).

    Returns:
        The dtype and the reason.
    """
    if device_type != "cpu":
        return TrainingDtype(torch.bfloat16, f"bf16 base on {device_type}")
    scope = ""
    if bits < 16:
        computed = "layers bitsandbytes leaves unquantized" + (" and 4-bit compute" if bits == 4 else "")
        scope = f"{bits}-bit base, {'int8' if bits == 8 else 'NF4'} weights; {computed}: "
    if cpu_dtype == "bf16":
        return TrainingDtype(torch.bfloat16, f"{scope}bf16 forced on CPU (--cpu-dtype bf16)")
    if cpu_dtype == "fp32":
        return TrainingDtype(torch.float32, f"{scope}fp32 forced on CPU (--cpu-dtype fp32)")
    native, evidence = cpu_native_bf16()
    if native:
        return TrainingDtype(torch.bfloat16, f"{scope}CPU computes bf16 natively ({evidence})")
    return TrainingDtype(
        torch.float32, f"{scope}fp32 on CPU: bf16 would be emulated ({evidence}); --cpu-dtype bf16 forces bf16"
    )


def has_local_weights(model: ResolvedModel) -> bool:
    """True when the model is a local directory holding safetensors weights."""
    return model.local_dir is not None and any(model.local_dir.glob("*.safetensors"))


def load_for_training(
    model: ResolvedModel,
    spec: RunSpec,
    device: torch.device,
    random_weights: bool,
    seed: int,
    dtype: torch.dtype | None = None,
) -> PreTrainedModel:
    """Load the base model for ``spec`` on ``device`` (bitsandbytes at 8/4 bits).

    Args:
        model: The resolved model.
        spec: The run spec (bits decide quantization).
        device: Where the model lives (one device per process).
        random_weights: Build from the config with random weights instead of loading weights.
        seed: Seed for the random weights.
        dtype: The base's dtype (default: :func:`training_dtype` for the spec and device, detected).

    Returns:
        The model, not yet wrapped by PEFT.

    Raises:
        ModelError: No local weights and random weights not requested, or loading fails.
    """
    from transformers import AutoModelForCausalLM

    use_random = random_weights or model.key in BUILT_IN_RANDOM
    if not use_random and not has_local_weights(model):
        raise ModelError(
            f"model {model.display_name!r} has no local safetensors weights; pass --random-weights to measure "
            "with random weights of the same shapes (resource use does not depend on weight values)"
        )
    quant = quantization_config(spec)
    dtype = dtype or training_dtype(spec.bits, device.type).dtype
    if quant is not None and quant.load_in_4bit and device.type == "cpu":
        quant.bnb_4bit_compute_dtype = dtype  # the CPU rule of training_dtype (GPUs keep bf16)
    device_map = {"": device}
    with quiet_hf():
        if not use_random and model.local_dir is not None:
            return AutoModelForCausalLM.from_pretrained(
                model.local_dir,
                dtype=dtype,
                quantization_config=quant,
                device_map=device_map,
                use_safetensors=True,
                trust_remote_code=False,
                local_files_only=True,
            )
        torch.manual_seed(seed)
        random_model: PreTrainedModel = AutoModelForCausalLM.from_config(
            model.config, dtype=dtype, trust_remote_code=False
        )
        if quant is None:
            return random_model.to(device)  # type: ignore[arg-type, no-any-return]
        with tempfile.TemporaryDirectory(prefix="lorabench-random-") as tmp:
            random_model.save_pretrained(tmp, safe_serialization=True)
            del random_model
            return AutoModelForCausalLM.from_pretrained(
                Path(tmp),
                dtype=dtype,
                quantization_config=quant,
                device_map=device_map,
                use_safetensors=True,
                trust_remote_code=False,
                local_files_only=True,
            )
