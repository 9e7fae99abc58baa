"""The memory part of the page, split by model and device class: one table, plot and insight set per section.

A run measured on the CPU and a prediction for a CUDA device are different quantities (the CPU allocator's tensor
bytes vs the GPU caching allocator's peak), and a 4-layer test model in MB beside Llama-3.1-8B in GB teaches nothing,
so each (model, device class) pair is its own section. Predictions (estimate records) are GPU figures; a CPU section
takes from the model's estimates only the weights (Model Size, base row), never their predicted peaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lorabench.report.memory import MemoryData, SizeUnit, group_memory, memory_table, short_name
from lorabench.report.sources import EstimateRecord, RunRecord, Sources
from lorabench.report.tables import Table

__all__ = ["DeviceClass", "MemorySection", "build_sections", "device_class"]

DeviceClass = Literal["GPU", "CPU"]


def device_class(run: RunRecord) -> DeviceClass:
    """Where a run measured: ``CPU`` when its metrics say so, else ``GPU``."""
    return "CPU" if (run.device or "").lower() == "cpu" else "GPU"


@dataclass(frozen=True)
class MemorySection:
    """One model on one device class.

    Attributes:
        slug: A file-name-safe id (``llama-3.1-8b-gpu``), used for plot names and HTML ids.
        model_key: The model's catalog key.
        model_name: Its display name.
        device: ``GPU`` or ``CPU``.
        devices: The devices the runs measured on, as their environment names them.
        data: Rows and cells.
        table: The memory table.
        runs: The run records of this section.
        predicted: Whether any figure is predicted (estimate records with a peak).
        gpu: The GPU this section's runs measured on when one model's runs span several GPU types (``predicted``
            for the section holding that model's predictions); None otherwise.
    """

    slug: str
    model_key: str
    model_name: str
    device: DeviceClass
    devices: tuple[str, ...]
    data: MemoryData
    table: Table
    runs: tuple[RunRecord, ...]
    predicted: bool
    gpu: str | None = None

    @property
    def title(self) -> str:
        """``Llama-3.1-8B on GPU`` / ``tiny on CPU``; ``... on NVIDIA A100 ...`` when the model's runs span GPUs."""
        if self.gpu == "predicted":
            return f"{short_name(self.model_name)} on GPU (predicted)"
        return f"{short_name(self.model_name)} on {self.gpu or self.device}"

    @property
    def measured_where(self) -> str:
        """``measured on CPU (AMD EPYC) in 5 run records`` (empty without runs)."""
        if not self.runs:
            return ""
        on = f" ({', '.join(self.devices)})" if self.devices else ""
        return f"measured on {self.device}{on} in {len(self.runs)} run record{'s' * (len(self.runs) != 1)}"

    @property
    def where(self) -> str:
        """What was measured where: ``measured on CPU (AMD EPYC) ...``, ``predicted for a CUDA GPU``, or both."""
        parts = [self.measured_where] if self.runs else []
        if self.predicted:
            parts.append("predicted for a CUDA GPU by lorabench estimate")
        return "; ".join(parts) or "weights only"

    @property
    def where_sentence(self) -> str:
        """:attr:`where` as a sentence (capitalised, full stop)."""
        return f"{self.where[0].upper()}{self.where[1:]}."


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "model"


def _section(
    model: str,
    device: DeviceClass,
    gpu: str | None,
    section_runs: list[RunRecord],
    section_ests: list[EstimateRecord],
    model_ests: list[EstimateRecord],
    unit: SizeUnit,
) -> MemorySection | None:
    """One section (None when it has no rows); ``gpu`` names it when a model's runs span several GPU types."""
    if device == "GPU":
        data = group_memory(section_runs, section_ests, weights_from=model_ests if gpu else ())
    else:
        data = group_memory(section_runs, (), weights_from=model_ests)
    if data is None or not data.rows:
        return None
    devices = tuple(sorted({r.device_name for r in section_runs if r.device_name}))
    title = None if device == "GPU" else "CPU Memory Usage for Fine-tuning"
    return MemorySection(
        slug=_slug(f"{model}-{device}" + (f"-{gpu}" if gpu else "")),
        model_key=model,
        model_name=data.rows[0].model_name,
        device=device,
        devices=devices,
        data=data,
        table=memory_table(data, unit, device, title),
        runs=tuple(section_runs),
        predicted=device == "GPU" and any(e.peak_allocated_bytes is not None for e in section_ests),
        gpu=gpu,
    )


def build_sections(sources: Sources, unit: SizeUnit = "GB") -> list[MemorySection]:
    """Split the run and estimate records into sections, GPU sections first (the seed's table leads).

    Args:
        sources: The records.
        unit: Size unit of the tables.

    Returns:
        Sections with at least one row; none when there are no run or estimate records.
    """
    runs: dict[tuple[str, DeviceClass], list[RunRecord]] = {}
    for run in sources.runs:
        runs.setdefault((run.model_key, device_class(run)), []).append(run)
    estimates: dict[str, list[EstimateRecord]] = {}
    for est in sources.estimates:
        estimates.setdefault(est.model_key, []).append(est)
    keys = set(runs)
    for model, ests in estimates.items():
        if any(e.peak_allocated_bytes is not None for e in ests) or not any(k[0] == model for k in keys):
            keys.add((model, "GPU"))
    sections = []
    for model, device in sorted(keys, key=lambda k: (k[1] != "GPU", k[0])):
        section_runs = runs.get((model, device), [])
        model_ests = estimates.get(model, [])
        # runs of one model on several GPU types (a heterogeneous sweep): one section per GPU, and the model's
        # predictions (GPU-independent allocated peaks) in a section of their own
        by_gpu: dict[str, list[RunRecord]] = {}
        for run in section_runs:
            by_gpu.setdefault(run.device_name or "", []).append(run)
        if device == "GPU" and len(by_gpu) > 1:
            groups: list[tuple[str | None, list[RunRecord], list[EstimateRecord]]] = [
                (name or "unnamed GPU", group, []) for name, group in sorted(by_gpu.items())
            ]
            if any(e.peak_allocated_bytes is not None for e in model_ests):
                groups.append(("predicted", [], model_ests))
        else:
            groups = [(None, section_runs, model_ests)]
        for gpu, group_runs, group_ests in groups:
            section = _section(model, device, gpu, group_runs, group_ests, model_ests, unit)
            if section is not None:
                sections.append(section)
    return sections
