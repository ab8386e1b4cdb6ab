"""LLM metric arithmetic: TTFT from the first content chunk, usage as token authority, per-token ITL."""

from __future__ import annotations

import pytest

from loadtests.metrics import Histogram, stream_timing


def test_ttft_is_measured_to_the_first_content_chunk():
    timing = stream_timing(start=10.0, content_times=[10.05, 10.06, 10.07], end=10.08, usage_tokens=3)
    assert timing.ttft == pytest.approx(0.05)
    assert timing.e2e == pytest.approx(0.08)


def test_itl_is_one_gap_per_token_when_usage_matches_the_chunks():
    timing = stream_timing(0.0, [0.1, 0.12, 0.15], 0.2, usage_tokens=3)
    assert timing.itls == pytest.approx((0.02, 0.03))
    assert not timing.mismatch


def test_usage_wins_over_the_chunk_count_and_the_mismatch_is_reported():
    # Two chunks carried four tokens: the mean gap is spread over the three token gaps.
    timing = stream_timing(0.0, [0.1, 0.4], 0.5, usage_tokens=4)
    assert timing.tokens == 4
    assert timing.mismatch
    assert timing.itls == pytest.approx((0.1, 0.1, 0.1))
    assert timing.tokens_per_s == pytest.approx(8.0)


def test_without_usage_the_chunks_are_counted_and_that_is_flagged():
    timing = stream_timing(0.0, [0.1, 0.2], 0.3, usage_tokens=None)
    assert timing.tokens == 2
    assert timing.usage_missing


def test_a_stream_without_content_has_no_ttft():
    timing = stream_timing(0.0, [], 0.3, usage_tokens=0)
    assert timing.ttft is None
    assert timing.itls == ()
    assert timing.tokens_per_s is None


def test_histogram_is_exact_below_a_millisecond_and_three_digits_above():
    h = Histogram()
    h.extend([123.4, 999.0, 123456.0])
    assert sorted(h.counts) == [123, 999, 123000]


def test_histogram_percentiles_follow_the_ranks():
    h = Histogram()
    h.extend(range(1, 101))
    assert h.percentile(0.5) == 50
    assert h.percentile(0.99) == 99
    assert h.percentile(1.0) == 100
    assert Histogram().percentile(0.5) is None


def test_histogram_round_trips_and_merges():
    a, b = Histogram(), Histogram()
    a.extend([1, 2, 3])
    b.extend([3, 4])
    merged = Histogram.from_dict(a.to_dict())
    merged.merge(b)
    assert merged.n == 5
    assert merged.counts[3] == 2
    assert merged.mean == pytest.approx(13 / 5)


def test_histogram_extend_with_scale_matches_add():
    fast, slow = Histogram(), Histogram()
    values = [0.0001234, 0.002, 0.5, -0.000001]
    fast.extend(values, 1e6)
    for v in values:
        slow.add(v * 1e6)
    assert fast.counts == slow.counts and fast.n == slow.n
    assert fast.total == pytest.approx(slow.total)
