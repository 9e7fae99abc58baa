from __future__ import annotations

import pytest

from lorabench.errors import MeasurementError
from lorabench.measure.trackers import RankCounts, StepCount, TokenCounter, combine_ranks, rank_counts, throughput


def test_rates_use_the_counted_steps_and_their_own_time() -> None:
    steps = [StepCount(100, 50, 2), StepCount(200, 150, 4), StepCount(300, 250, 6)]
    counts = rank_counts([10.0, 2.0, 3.0], steps, warmup_steps=1)
    assert counts == RankCounts(0, 2, 5.0, 500, 400, 10)
    rates = throughput(counts)
    assert rates.tokens_per_s_padded == pytest.approx(100.0)
    assert rates.tokens_per_s_nonpad == pytest.approx(80.0)
    assert rates.samples_per_s == pytest.approx(2.0)


def test_not_mean_step_time_times_all_steps() -> None:
    # The peer-tool bug: all steps' samples / mean step time inflates the rate by the step count.
    steps = [StepCount(10, 10, 1)] * 4
    rates = throughput(rank_counts([1.0] * 4, steps, warmup_steps=0))
    assert rates.samples_per_s == pytest.approx(1.0)  # 4 samples in 4 s, not 4 / 1 s


def test_world_size_scales_one_rank() -> None:
    counts = RankCounts(rank=1, counted_steps=2, counted_time_s=4.0, padded_tokens=80, nonpad_tokens=40, samples=8)
    rates = throughput(counts, world_size=4)
    assert rates.tokens_per_s_padded == pytest.approx(80.0)
    assert rates.tokens_per_s_nonpad == pytest.approx(40.0)
    assert rates.samples_per_s == pytest.approx(8.0)
    assert rates.world_size == 4 and "world_size 4" in rates.method


def test_combine_ranks_sums_tokens_over_the_slowest_time() -> None:
    ranks = [RankCounts(0, 3, 2.0, 600, 500, 6), RankCounts(1, 3, 2.5, 600, 400, 6)]
    rates = combine_ranks(ranks)
    assert rates.tokens_per_s_padded == pytest.approx(1200 / 2.5)
    assert rates.tokens_per_s_nonpad == pytest.approx(900 / 2.5)
    assert rates.samples_per_s == pytest.approx(12 / 2.5)
    assert rates.world_size == 2


@pytest.mark.parametrize(
    "ranks",
    [
        [],
        [RankCounts(0, 3, 1.0, 1, 1, 1), RankCounts(0, 3, 1.0, 1, 1, 1)],
        [RankCounts(0, 3, 1.0, 1, 1, 1), RankCounts(1, 2, 1.0, 1, 1, 1)],
    ],
)
def test_combine_ranks_refuses_inconsistent_input(ranks: list[RankCounts]) -> None:
    with pytest.raises(MeasurementError):
        combine_ranks(ranks)


def test_no_counted_steps_means_unknown_rates() -> None:
    counts = rank_counts([1.0, 1.0], [StepCount(1, 1, 1)] * 2, warmup_steps=5)
    assert counts.counted_steps == 0 and counts.counted_time_s is None
    rates = throughput(counts)
    assert rates.tokens_per_s_padded is None and rates.tokens_per_s_nonpad is None and rates.samples_per_s is None
    zero_time = throughput(RankCounts(0, 1, 0.0, 5, 5, 1))
    assert zero_time.samples_per_s is None


@pytest.mark.parametrize("args", [(-1, 0, 0), (10, 11, 1), (10, 5, -2), (1.5, 1, 1), (True, 0, 0)])
def test_invalid_counts_are_refused(args: tuple[int, int, int]) -> None:
    with pytest.raises(MeasurementError):
        TokenCounter().add(*args)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(MeasurementError):
        rank_counts([1.0], [], warmup_steps=0)
    with pytest.raises(MeasurementError):
        throughput(RankCounts(0, 1, 1.0, 1, 1, 1), world_size=0)
