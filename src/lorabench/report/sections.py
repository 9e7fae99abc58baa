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

    @property
    def title(self) -> str:
        """``Llama-3.1-8B on GPU`` / ``tiny on CPU``."""
        return f"{short_name(self.model_name)} on {self.device}"

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
        if device == "GPU":
            data = group_memory(section_runs, model_ests)
        else:
            data = group_memory(section_runs, (), weights_from=model_ests)
        if data is None or not data.rows:
            continue
        name = data.rows[0].model_name
        devices = tuple(sorted({r.device_name for r in section_runs if r.device_name}))
        slug = _slug(f"{model}-{device}")
        title = None if device == "GPU" else "CPU Memory Usage for Fine-tuning"
        sections.append(
            MemorySection(
                slug=slug,
                model_key=model,
                model_name=name,
                device=device,
                devices=devices,
                data=data,
                table=memory_table(data, unit, device, title),
                runs=tuple(section_runs),
                predicted=device == "GPU" and any(e.peak_allocated_bytes is not None for e in model_ests),
            )
        )
    return sections
