"""Tokens and samples per step, and throughput over the counted (post-warm-up) steps.

Counts are per rank: each process records what *it* processed. A global figure is the sum over ranks divided by
the time of the same steps; :func:`combine_ranks` computes it from every rank's :class:`RankCounts`, and
:func:`throughput` estimates it from one rank's counts times the world size when only one rank reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lorabench.errors import MeasurementError

__all__ = ["RankCounts", "StepCount", "Throughput", "TokenCounter", "combine_ranks", "rank_counts", "throughput"]


@dataclass(frozen=True)
class StepCount:
    """What one rank processed in one step.

    Attributes:
        padded_tokens: Every position of the batch, padding included (batch x padded length).
        nonpad_tokens: Positions holding real tokens (the attention mask's ones).
        samples: Sequences in the batch.
    """

    padded_tokens: int
    nonpad_tokens: int
    samples: int


class TokenCounter:
    """Collects one :class:`StepCount` per step."""

    def __init__(self) -> None:
        self._steps: list[StepCount] = []

    def add(self, padded_tokens: int, nonpad_tokens: int, samples: int) -> None:
        """Record one step's counts.

        Raises:
            MeasurementError: A count is negative, or there are more real tokens than positions.
        """
        for name, value in (("padded_tokens", padded_tokens), ("nonpad_tokens", nonpad_tokens), ("samples", samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MeasurementError(f"{name} must be an integer >= 0 (got {value!r})")
        if nonpad_tokens > padded_tokens:
            raise MeasurementError(
                f"nonpad_tokens ({nonpad_tokens}) cannot exceed padded_tokens ({padded_tokens}) in one step"
            )
        self._steps.append(StepCount(padded_tokens, nonpad_tokens, samples))

    @property
    def steps(self) -> list[StepCount]:
        """Every recorded step, in order."""
        return list(self._steps)


@dataclass(frozen=True)
class RankCounts:
    """One rank's counted steps (those after the warm-up): what it processed and how long those steps took.

    Attributes:
        rank: The rank that recorded these counts.
        counted_steps: Steps after the warm-up.
        counted_time_s: The summed durations of exactly those steps; None when there are none.
        padded_tokens: Padded tokens of those steps.
        nonpad_tokens: Non-padded tokens of those steps.
        samples: Samples of those steps.
    """

    rank: int
    counted_steps: int
    counted_time_s: float | None
    padded_tokens: int
    nonpad_tokens: int
    samples: int


def rank_counts(
    step_times_s: Sequence[float], steps: Sequence[StepCount], warmup_steps: int, rank: int = 0
) -> RankCounts:
    """Sum one rank's counts and step times over the steps after the warm-up.

    Raises:
        MeasurementError: The number of step times and of step counts differ.
    """
    if len(step_times_s) != len(steps):
        raise MeasurementError(f"{len(step_times_s)} step times but {len(steps)} step counts")
    counted = steps[warmup_steps:]
    times = step_times_s[warmup_steps:]
    return RankCounts(
        rank=rank,
        counted_steps=len(counted),
        counted_time_s=sum(times) if times else None,
        padded_tokens=sum(s.padded_tokens for s in counted),
        nonpad_tokens=sum(s.nonpad_tokens for s in counted),
        samples=sum(s.samples for s in counted),
    )


@dataclass(frozen=True)
class Throughput:
    """Global rates over the counted steps, and how they were obtained.

    Attributes:
        tokens_per_s_padded: Padded tokens per second, all ranks together; None when unknown.
        tokens_per_s_nonpad: Non-padded tokens per second, all ranks together; None when unknown.
        samples_per_s: Samples per second, all ranks together; None when unknown.
        world_size: How many ranks the figures cover.
        method: How the global figure was obtained (summed over ranks, or one rank times the world size).
    """

    tokens_per_s_padded: float | None
    tokens_per_s_nonpad: float | None
    samples_per_s: float | None
    world_size: int
    method: str


def _rates(padded: int, nonpad: int, samples: int, seconds: float | None, world_size: int, method: str) -> Throughput:
    if seconds is None or seconds <= 0:
        return Throughput(None, None, None, world_size, method)
    return Throughput(padded / seconds, nonpad / seconds, samples / seconds, world_size, method)


def throughput(counts: RankCounts, world_size: int = 1) -> Throughput:
    """Global rates from one rank's counts: its tokens over its counted time, times ``world_size``.

    With several ranks this assumes every rank processes as much as this one: exact for padded tokens and samples
    when batches have a fixed shape, an estimate for non-padded tokens. Prefer :func:`combine_ranks` when every
    rank's counts are at hand.

    Raises:
        MeasurementError: ``world_size`` is below 1.
    """
    if world_size < 1:
        raise MeasurementError(f"world_size must be >= 1 (got {world_size})")
    if world_size == 1:
        method = "one rank: tokens of the counted steps / time of those steps"
    else:
        method = f"rank {counts.rank} x world_size {world_size} (assumes every rank processes as much)"
    return _rates(
        counts.padded_tokens * world_size,
        counts.nonpad_tokens * world_size,
        counts.samples * world_size,
        counts.counted_time_s,
        world_size,
        method,
    )


def combine_ranks(ranks: Sequence[RankCounts]) -> Throughput:
    """Exact global rates: tokens summed over ranks / the slowest rank's counted time.

    Data-parallel ranks advance in lockstep, so the same counted steps span (nearly) the same time on every rank;
    the slowest rank's time is the one the run really took.

    Raises:
        MeasurementError: No ranks, a rank given twice, or ranks that counted different numbers of steps.
    """
    if not ranks:
        raise MeasurementError("combine_ranks() needs at least one rank")
    ids = [r.rank for r in ranks]
    if len(set(ids)) != len(ids):
        raise MeasurementError(f"a rank appears twice: {sorted(ids)}")
    steps = {r.counted_steps for r in ranks}
    if len(steps) != 1:
        raise MeasurementError(f"ranks counted different numbers of steps: {sorted(steps)}")
    times = [r.counted_time_s for r in ranks]
    seconds = None if any(t is None for t in times) else max(t for t in times if t is not None)
    return _rates(
        sum(r.padded_tokens for r in ranks),
        sum(r.nonpad_tokens for r in ranks),
        sum(r.samples for r in ranks),
        seconds,
        len(ranks),
        f"sum over {len(ranks)} ranks / slowest rank's time of the counted steps",
    )
