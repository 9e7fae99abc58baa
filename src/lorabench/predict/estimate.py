"""The estimate record: what lorabench predicts for a spec before any run.

For now it holds the exact parameter and weight-size accounting; memory at the peak, FLOPs
and time join it as the prediction engines land.
"""

from __future__ import annotations

from typing import Any

from lorabench import __version__
from lorabench.models import ResolvedModel
from lorabench.predict.params import BITS, Accounting, account
from lorabench.spec import RunSpec

__all__ = ["ESTIMATE_SCHEMA", "ESTIMATE_SCHEMA_VERSION", "estimate", "estimate_record"]

ESTIMATE_SCHEMA = "lorabench.estimate"
ESTIMATE_SCHEMA_VERSION = 1

_ENGINE = "meta-graph accounting"


def _library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def estimate_record(spec: RunSpec, acc: Accounting) -> dict[str, Any]:
    """Assemble the JSON-ready estimate record for ``spec`` from its accounting."""
    bits = spec.bits
    versions = _library_versions()
    return {
        "schema": ESTIMATE_SCHEMA,
        "schema_version": ESTIMATE_SCHEMA_VERSION,
        "lorabench_version": __version__,
        "spec": spec.model_dump(mode="json"),
        "model": {
            "key": acc.model.key,
            "display_name": acc.model.display_name,
            "config_source": acc.model.source,
        },
        "base_params": acc.base_params,
        "trainable_params": acc.trainable_params,
        "trainable_breakdown": {
            "lora_params": acc.lora_params,
            "dora_magnitude_params": acc.dora_magnitude_params,
        },
        "trainable_percent": 100.0 * acc.trainable_params / acc.base_params,
        "adapter_bytes": acc.adapter_bytes,
        "adapter_dtype": acc.adapter_dtype,
        "base_weights_bytes": acc.base_bytes(bits),
        "quant_constant_bytes": acc.constant_bytes(bits),
        "weights_bytes": acc.weights_bytes(bits),
        "nominal_weights_bytes": acc.nominal_base_bytes(bits) + acc.adapter_bytes,
        "weights_bytes_by_bits": {str(b): acc.weights_bytes(b) for b in BITS},
        "components": [
            {
                "name": c.name,
                "params": c.params,
                "quantized_params": c.quantized_params,
                "bytes": c.bytes_by_bits[bits],
                "quant_constant_bytes": c.constant_bytes_by_bits[bits],
                "bytes_by_bits": {str(b): c.bytes_by_bits[b] for b in BITS},
            }
            for c in acc.components
        ],
        "provenance": {
            "params": f"predicted ({_ENGINE}): HF model built on the meta device from its config, PEFT applied",
            "weights_bytes": (
                f"predicted ({_ENGINE}): bf16 unquantized; 8-bit = int8 + fp32 row scales (LLM.int8); "
                "4-bit = NF4 packed + blockwise absmax (64) with double quantization (256); modules kept "
                "unquantized by transformers' bitsandbytes rule"
            ),
            "nominal_weights_bytes": (
                "arithmetic: parameters x bits/8 + adapter (ignores unquantized layers and constants)"
            ),
            "libraries": versions,
        },
    }


def estimate(spec: RunSpec, model: ResolvedModel | None = None) -> dict[str, Any]:
    """Predict what lorabench can for ``spec`` and return the estimate record.

    Raises:
        ModelError: Unknown model or target module.
    """
    return estimate_record(spec, account(spec, model))
