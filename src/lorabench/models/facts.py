"""Module-graph facts of one (model config, adapter): built once from the real meta model, cached on disk.

Every static prediction (parameter and byte accounting, the formula engine's static bytes and features, the
FLOPs count) needs the same few facts about the module graph transformers and PEFT create: the shapes of the
base's linear layers, which of them bitsandbytes would quantize, parameter and buffer sizes, the adapters'
shapes and the config's integers. :func:`model_facts` builds the Hugging Face model on the meta device and
applies PEFT **once** per (config, adapter), reads all of them, and keeps them

* in memory for the rest of the process, and
* as JSON in the user's cache directory (``$LORABENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/lorabench``, else
  ``~/.cache/lorabench``), keyed by the config's content, the adapter's shape-relevant fields (method family,
  rank, targets, dropout on/off, modules to save, layers to transform, rank pattern) and the versions of
  torch, transformers, PEFT, bitsandbytes and lorabench,

so a repeated or nearby query (another batch, sequence length, bit width, optimizer or GPU) imports neither
torch, transformers nor PEFT. Any change of config content or library version is another key: the facts are
rebuilt. A cache that cannot be read or written is ignored (the facts are then built in-process).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorabench.models.catalog import ResolvedModel, resolve_model
from lorabench.spec import ALL_LINEAR, RunSpec

if TYPE_CHECKING:
    import torch

__all__ = [
    "FACTS_SCHEMA",
    "FACTS_SCHEMA_VERSION",
    "AdapterFact",
    "ComponentFact",
    "ConfigFacts",
    "LinearFact",
    "ModelFacts",
    "cache_dir",
    "clear_memory_cache",
    "facts_key",
    "library_versions",
    "model_facts",
]

FACTS_SCHEMA = "lorabench.model_facts"
# Bump when what is recorded (or how) changes: older cache files are then never read.
FACTS_SCHEMA_VERSION = 2

_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes")
# Config attributes read through ConfigFacts even when they are properties (not in to_dict()).
_CONFIG_NAMES = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "sliding_window",
    "use_sliding_window",
    "layer_types",
    "max_position_embeddings",
    "tie_word_embeddings",
)


@dataclass(frozen=True)
class LinearFact:
    """One base ``nn.Linear``: its shape and whether gradient checkpointing recomputes it."""

    in_features: int
    out_features: int
    checkpointed: bool


@dataclass(frozen=True)
class AdapterFact:
    """One LoRA adapter (per adapted layer and adapter name) as PEFT created it."""

    in_features: int
    out_features: int
    rank: int
    dora: bool
    dropout: bool
    checkpointed: bool


@dataclass(frozen=True)
class ComponentFact:
    """Parameters of one part of the base model and their bytes at 16, 8 and 4 bits."""

    name: str
    params: int
    quantized_params: int
    bytes_by_bits: dict[int, int]
    constant_bytes_by_bits: dict[int, int]


class ConfigFacts:
    """The transformers config's plain values, read like the config (``getattr``) without transformers."""

    def __init__(self, values: Mapping[str, Any], class_name: str) -> None:
        self._values = dict(values)
        self._class_name = class_name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._class_name} has no attribute {name!r}") from None

    @property
    def class_name(self) -> str:
        """The transformers config class the values came from (e.g. ``LlamaConfig``)."""
        return self._class_name

    def to_dict(self) -> dict[str, Any]:
        """The recorded values."""
        return dict(self._values)


@dataclass(frozen=True, eq=False)
class ModelFacts:
    """What the accounting, formula and FLOPs engines read from one meta model with its adapter.

    Attributes:
        key: The cache key's inputs (config digest, adapter fields, library versions).
        config: The config's plain values.
        base_params: Parameters of the base model (tied weights once).
        components: Base parameters and bytes by component (embeddings, attention, mlp, ...).
        kept_unquantized: Module names transformers' bitsandbytes rule leaves in 16-bit.
        lora_params: Trainable LoRA A/B parameters.
        dora_magnitude_params: Trainable DoRA magnitudes.
        adapter_bytes: Bytes of the trainable parameters.
        adapter_dtype: Their dtype(s), e.g. ``float32``.
        quantized: ``(out, in)`` of every linear bitsandbytes would quantize.
        quantized_bias: Element counts of those linears' biases.
        unquantized: Element counts of the other parameters.
        buffers: Buffer bytes.
        trainable: Element counts of the trainable tensors.
        in_adapted: Sum of the adapted layers' ``in_features``.
        out_adapted: Sum of their ``out_features``.
        r_adapted: Sum of their ranks.
        dora_in: ``in_features`` of the adapted layer with the largest DoRA weight-norm work.
        dora_out: Its ``out_features``.
        adapted_weights: Elements of all adapted weights.
        linears: Every base ``nn.Linear`` (``lm_head`` included).
        adapters: Every adapter.
        adapter_elem: Element size (bytes) of each trainable tensor (fp32 adapters; ``modules_to_save`` copies
            keep the base dtype).
        dropout_zero: PEFT got lora_dropout 0 (so it builds no dropout modules).
        wrapped_weights: Elements of fused (3-D) expert parameters PEFT wraps with ``ParamWrapper``.
        modules_to_save_params: Trainable parameters of the ``modules_to_save`` copies.
        module_groups: Per module group (attention, dense mlp, experts, shared experts, router): units,
            adapted, params, quantized params and the class names left 16-bit.
        dropout: The lora_dropout PEFT really gets (0 where it wraps fused experts).
        notes: Notes from building the adapter (e.g. why dropout was set to 0).
        built: ``built`` when this process built the meta model, ``cache`` when read from disk.
    """

    key: Mapping[str, Any]
    config: ConfigFacts
    base_params: int
    components: tuple[ComponentFact, ...]
    kept_unquantized: tuple[str, ...]
    lora_params: int
    dora_magnitude_params: int
    adapter_bytes: int
    adapter_dtype: str
    quantized: tuple[tuple[int, int], ...]
    quantized_bias: tuple[int, ...]
    unquantized: tuple[int, ...]
    buffers: tuple[int, ...]
    trainable: tuple[int, ...]
    in_adapted: int
    out_adapted: int
    r_adapted: int
    dora_in: int
    dora_out: int
    adapted_weights: int
    linears: tuple[LinearFact, ...]
    adapters: tuple[AdapterFact, ...]
    adapter_elem: tuple[int, ...] = ()
    dropout_zero: bool = False
    wrapped_weights: int = 0
    modules_to_save_params: int = 0
    module_groups: tuple[Mapping[str, Any], ...] = ()
    dropout: float = 0.0
    notes: tuple[str, ...] = ()
    built: str = "built"

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to the cache."""
        data: dict[str, Any] = {
            "schema": FACTS_SCHEMA,
            "schema_version": FACTS_SCHEMA_VERSION,
            "key": dict(self.key),
            "config": {"class_name": self.config.class_name, "values": self.config.to_dict()},
        }
        for name in self.__dataclass_fields__:
            if name in ("key", "config", "built"):
                continue
            value = getattr(self, name)
            if name in ("components", "linears", "adapters"):
                value = [asdict(item) for item in value]
            elif name == "module_groups":
                value = [dict(item) for item in value]
            data[name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelFacts:
        """Read the JSON form back.

        Raises:
            ValueError: Not a facts file of this schema version.
            KeyError: A field is missing.
            TypeError: A field has the wrong type.
        """
        if data.get("schema") != FACTS_SCHEMA or data.get("schema_version") != FACTS_SCHEMA_VERSION:
            raise ValueError("not a lorabench model-facts file of this version")
        config = data["config"]
        components = tuple(
            ComponentFact(
                name=str(c["name"]),
                params=int(c["params"]),
                quantized_params=int(c["quantized_params"]),
                bytes_by_bits={int(b): int(v) for b, v in c["bytes_by_bits"].items()},
                constant_bytes_by_bits={int(b): int(v) for b, v in c["constant_bytes_by_bits"].items()},
            )
            for c in data["components"]
        )
        return cls(
            key=dict(data["key"]),
            config=ConfigFacts(dict(config["values"]), str(config["class_name"])),
            base_params=int(data["base_params"]),
            components=components,
            kept_unquantized=tuple(str(n) for n in data["kept_unquantized"]),
            lora_params=int(data["lora_params"]),
            dora_magnitude_params=int(data["dora_magnitude_params"]),
            adapter_bytes=int(data["adapter_bytes"]),
            adapter_dtype=str(data["adapter_dtype"]),
            quantized=tuple((int(o), int(i)) for o, i in data["quantized"]),
            quantized_bias=tuple(int(n) for n in data["quantized_bias"]),
            unquantized=tuple(int(n) for n in data["unquantized"]),
            buffers=tuple(int(n) for n in data["buffers"]),
            trainable=tuple(int(n) for n in data["trainable"]),
            in_adapted=int(data["in_adapted"]),
            out_adapted=int(data["out_adapted"]),
            r_adapted=int(data["r_adapted"]),
            dora_in=int(data["dora_in"]),
            dora_out=int(data["dora_out"]),
            adapted_weights=int(data["adapted_weights"]),
            linears=tuple(LinearFact(**item) for item in data["linears"]),
            adapters=tuple(AdapterFact(**item) for item in data["adapters"]),
            adapter_elem=tuple(int(n) for n in data["adapter_elem"]),
            dropout_zero=bool(data["dropout_zero"]),
            wrapped_weights=int(data["wrapped_weights"]),
            modules_to_save_params=int(data["modules_to_save_params"]),
            module_groups=tuple(dict(g) for g in data["module_groups"]),
            dropout=float(data["dropout"]),
            notes=tuple(str(n) for n in data["notes"]),
            built="cache",
        )


def library_versions() -> dict[str, str | None]:
    """Versions of torch, transformers, PEFT and bitsandbytes (None: not installed), without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def cache_dir() -> Path:
    """Where the facts cache lives: ``$LORABENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/lorabench``, else ``~/.cache``."""
    explicit = os.environ.get("LORABENCH_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lorabench"


def _adapter_fields(spec: RunSpec) -> dict[str, Any]:
    """The spec fields that change the module graph PEFT creates (alpha, rsLoRA and bits do not)."""
    return {
        "dora": spec.method == "dora",
        "rank": spec.rank,
        "targets": ALL_LINEAR if spec.target_list is None else list(spec.target_list),
        "dropout": spec.dropout > 0,
        "modules_to_save": list(spec.modules_to_save),
        "layers_to_transform": None if spec.layers_to_transform is None else list(spec.layers_to_transform),
        "rank_pattern": [list(pair) for pair in spec.rank_pattern],
        "pure_bf16": spec.pure_bf16,  # adapters in the base's dtype (bytes per element)
    }


def facts_key(spec: RunSpec, model: ResolvedModel) -> dict[str, Any]:
    """The cache key's inputs for ``spec`` on ``model`` (its ``digest`` names the cache file)."""
    from lorabench import __version__

    content = json.dumps(dict(model.config_content), sort_keys=True, default=str)
    key: dict[str, Any] = {
        "config_sha256": hashlib.sha256(content.encode("utf-8")).hexdigest(),
        "adapter": _adapter_fields(spec),
        "libraries": {**library_versions(), "lorabench": __version__},
        "facts_schema_version": FACTS_SCHEMA_VERSION,
    }
    key["digest"] = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
    return key


_memory: dict[str, ModelFacts] = {}


def clear_memory_cache() -> None:
    """Forget the facts held in this process (the disk cache stays)."""
    _memory.clear()


def model_facts(spec: RunSpec, model: ResolvedModel | None = None, *, use_disk: bool = True) -> ModelFacts:
    """The module-graph facts of ``spec``'s model with its adapter: from memory, the disk cache or one meta build.

    Args:
        spec: The run spec (model and the adapter's shape-relevant fields matter).
        model: An already resolved model, to skip resolving ``spec.model`` again.
        use_disk: Read and write the disk cache (the in-process cache is always used).

    Returns:
        The facts; ``built`` says whether this call built the meta model or read the cache.

    Raises:
        ModelError: Unknown model, a config transformers cannot read, or a target module the
            architecture does not have.
    """
    resolved = model or resolve_model(spec.model)
    key = facts_key(spec, resolved)
    digest = str(key["digest"])
    if digest in _memory:
        return _memory[digest]
    path = cache_dir() / "facts" / f"{digest}.json"
    facts = _read(path) if use_disk else None
    if facts is None:
        facts = _build(spec, resolved, key)
        if use_disk:
            _write(path, facts)
    _memory[digest] = facts
    return facts


def _read(path: Path) -> ModelFacts | None:
    try:
        return ModelFacts.from_json(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent, stale or damaged: rebuild


def _write(path: Path, facts: ModelFacts) -> None:
    from lorabench.errors import LorabenchError
    from lorabench.records import write_text_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(facts.to_json(), separators=(",", ":")), what="facts cache")
    except (OSError, LorabenchError):
        pass  # a cache that cannot be written only costs speed


def _config_values(config: Any) -> dict[str, Any]:
    """The config's JSON-representable values, as they read back from the cache (tuples become lists)."""
    values: dict[str, Any] = {}
    for name, value in config.to_dict().items():
        try:
            values[name] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            continue
    for name in _CONFIG_NAMES:
        if name not in values and hasattr(config, name):
            try:
                values[name] = json.loads(json.dumps(getattr(config, name)))
            except (TypeError, ValueError):
                continue
    return values


def _checkpointed_ids(model: torch.nn.Module) -> set[int]:
    """Ids of every module inside a layer Hugging Face gradient checkpointing wraps (the decoder layers)."""
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer
    except ImportError:  # older transformers: everything but the output embedding (see _linears)
        return set()
    ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, GradientCheckpointingLayer):
            ids.update(id(sub) for sub in module.modules())
    return ids


def _linears(model: torch.nn.Module) -> list[LinearFact]:
    import torch

    ckpt = _checkpointed_ids(model)
    get_out = getattr(model, "get_output_embeddings", None)
    output_embedding = get_out() if callable(get_out) else None
    return [
        LinearFact(
            int(module.in_features),
            int(module.out_features),
            id(module) in ckpt if ckpt else module is not output_embedding,
        )
        for module in model.modules()
        if isinstance(module, torch.nn.Linear)
    ]


def _quantization_split(
    base: torch.nn.Module, skip: list[str]
) -> tuple[list[tuple[int, int]], list[int], list[int], list[int]]:
    import torch

    from lorabench.predict.memory.params import _is_quantized

    quantized: list[tuple[int, int]] = []
    quantized_bias: list[int] = []
    seen: set[int] = set()
    for name, module in base.named_modules():
        if type(module) is torch.nn.Linear and _is_quantized(name, skip):
            quantized.append((int(module.out_features), int(module.in_features)))
            seen.add(id(module.weight))
            if module.bias is not None:
                quantized_bias.append(int(module.bias.numel()))
                seen.add(id(module.bias))
    unquantized: list[int] = []
    for param in base.parameters():
        if id(param) not in seen:
            seen.add(id(param))
            unquantized.append(int(param.numel()))
    buffers = [int(b.numel() * b.element_size()) for b in base.buffers()]
    return quantized, quantized_bias, unquantized, buffers


def _adapters(peft_model: torch.nn.Module) -> tuple[list[AdapterFact], dict[str, int]]:
    import torch
    from peft.tuners.lora import LoraLayer

    ckpt = _checkpointed_ids(peft_model)
    found: list[AdapterFact] = []
    sums = dict.fromkeys(
        ("in_adapted", "out_adapted", "r_adapted", "adapted_weights", "dora_in", "dora_out", "wrapped_weights"), 0
    )
    for module in peft_model.modules():
        if not isinstance(module, LoraLayer):
            continue
        layer: Any = module  # PEFT's attribute annotations are loose (lora_A is an nn.ModuleDict)
        parameter = getattr(layer, "parameter_name", None)
        if layer.r and parameter:  # a fused expert parameter wrapped by PEFT's ParamWrapper
            sums["wrapped_weights"] += int(getattr(layer.get_base_layer(), parameter).numel())
        elif layer.r:
            fan_in, fan_out = int(layer.in_features or 0), int(layer.out_features or 0)
            sums["in_adapted"] += fan_in
            sums["out_adapted"] += fan_out
            sums["r_adapted"] += sum(int(r) for r in layer.r.values())
            sums["adapted_weights"] += fan_in * fan_out
            if fan_in * (fan_in + 2 * fan_out) > sums["dora_in"] * (sums["dora_in"] + 2 * sums["dora_out"]):
                sums["dora_in"], sums["dora_out"] = fan_in, fan_out
        for name in layer.lora_A:
            rank, in_features = layer.lora_A[name].weight.shape  # A: r x in, B: out x r
            found.append(
                AdapterFact(
                    in_features=int(in_features),
                    out_features=int(layer.lora_B[name].weight.shape[0]),
                    rank=int(rank),
                    dora=bool(layer.use_dora.get(name, False)),
                    dropout=not isinstance(layer.lora_dropout[name], torch.nn.Identity),
                    checkpointed=id(module) in ckpt if ckpt else True,
                )
            )
    return found, sums


def _build(spec: RunSpec, resolved: ResolvedModel, key: Mapping[str, Any]) -> ModelFacts:
    """Build the meta model with its adapter once and read every fact from it."""
    from lorabench.errors import ModelError
    from lorabench.methods import check_targets, effective_dropout, lora_config
    from lorabench.models.build import build_meta_model, quiet_hf, without_bitsandbytes
    from lorabench.predict.memory.params import (
        _base_components,
        _count_adapted,
        _scan_groups,
        modules_kept_unquantized,
    )

    config = resolved.config
    config_values = _config_values(config)  # before PEFT touches the model
    base = build_meta_model(config)
    base_params, components = _base_components(base)
    skip = modules_kept_unquantized(base)
    quantized, quantized_bias, unquantized, buffers = _quantization_split(base, skip)
    linears = _linears(base)
    check_targets(spec, base, resolved.display_name)
    scanned, units = _scan_groups(base)
    dropout, dropout_note = effective_dropout(spec, base)
    with quiet_hf(), without_bitsandbytes():  # the meta model is unquantized: PEFT's bnb dispatchers cannot match
        from peft import get_peft_model

        peft_config = lora_config(spec, base)
        try:
            peft_model = get_peft_model(base, peft_config, autocast_adapter_dtype=not spec.pure_bf16)
        except ValueError as exc:  # PEFT's own checks (e.g. layers_to_transform on a model without layers)
            raise ModelError(f"PEFT cannot build this adapter on {resolved.display_name}: {exc}") from None
    groups = _count_adapted(peft_model, scanned, units)
    lora = dora = saved = adapter_bytes = 0
    dtypes: set[str] = set()
    trainable: list[int] = []
    elems: list[int] = []
    for name, param in peft_model.named_parameters():
        if not param.requires_grad:
            continue
        trainable.append(int(param.numel()))
        elems.append(int(param.element_size()))
        adapter_bytes += param.numel() * param.element_size()
        dtypes.add(str(param.dtype).removeprefix("torch."))
        if "lora_magnitude_vector" in name:
            dora += param.numel()
        elif "modules_to_save" in name:
            saved += param.numel()
        else:
            lora += param.numel()
    adapters, sums = _adapters(peft_model)
    return ModelFacts(
        key=dict(key),
        config=ConfigFacts(config_values, type(config).__name__),
        base_params=base_params,
        components=tuple(
            ComponentFact(c.name, c.params, c.quantized_params, dict(c.bytes_by_bits), dict(c.constant_bytes_by_bits))
            for c in components
        ),
        kept_unquantized=tuple(skip),
        lora_params=lora,
        dora_magnitude_params=dora,
        adapter_bytes=adapter_bytes,
        adapter_dtype="/".join(sorted(dtypes)) or "n/a",
        quantized=tuple(quantized),
        quantized_bias=tuple(quantized_bias),
        unquantized=tuple(unquantized),
        buffers=tuple(buffers),
        trainable=tuple(trainable),
        linears=tuple(linears),
        adapters=tuple(adapters),
        adapter_elem=tuple(elems),
        dropout_zero=float(peft_config.lora_dropout) == 0.0,
        modules_to_save_params=saved,
        module_groups=tuple(
            {
                "name": g.name,
                "units": g.units,
                "adapted": g.adapted,
                "params": g.params,
                "quantized_params": g.quantized_params,
                "unquantized_kinds": sorted(g.unquantized_kinds),
            }
            for g in groups
        ),
        dropout=float(dropout),
        notes=(dropout_note,) if dropout_note else (),
        built="built",
        **sums,
    )
