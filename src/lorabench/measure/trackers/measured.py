"""A measured figure that names the counter it came from; unknown is ``None``, never 0."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Measured", "max_known", "sum_known"]

Number = int | float


@dataclass(frozen=True)
class Measured:
    """One measured figure, its unit and the counter it was read from.

    Attributes:
        value: The figure (for several devices: the max or the sum over them, see the producer), or None when
            unknown. Never 0 for "no reading".
        unit: The unit of ``value`` (``bytes``, ``J``, ``s``).
        counter: The counter the figure was read from (e.g. ``torch.cuda.max_memory_allocated``); None when unknown.
        reason: Why the figure is unknown; None when it is known.
        per_device: One value per device, in the order of the run's devices (None where a device had no reading);
            empty when the figure is not per device.
    """

    value: Number | None
    unit: str
    counter: str | None
    reason: str | None = None
    per_device: tuple[Number | None, ...] = ()

    def __post_init__(self) -> None:
        if self.value is None and not self.reason:
            raise ValueError("an unknown figure needs a reason")
        if self.value is not None and not self.counter:
            raise ValueError("a known figure needs the name of its counter")

    @classmethod
    def unknown(cls, unit: str, reason: str, per_device: Sequence[Number | None] = ()) -> Measured:
        """An unknown figure: no value, no counter, and why."""
        return cls(value=None, unit=unit, counter=None, reason=reason, per_device=tuple(per_device))


def max_known(values: Sequence[Number | None]) -> Number | None:
    """The max over devices, or None when there are none or any device is unknown (it could be the max)."""
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def sum_known(values: Sequence[Number | None]) -> Number | None:
    """The sum over devices, or None when there are none or any device is unknown (a partial sum is no total)."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)
