"""The overhead benchmark's latency estimators, on a simulated engine that admits requests only at
step boundaries (what vLLM does): with random arrival phase, the shift of the medians recovers the
delay a gateway adds before and after the engine, while the median of pair differences misses the
part before (tests/bench/gateway_overhead.py explains why it uses the former)."""

from __future__ import annotations

import math
import random

from tests.bench.gateway_overhead import bootstrap_ci, median_of_differences, median_shift

STEP_MS = 50.0


def _ttft(arrival: float) -> float:
    # Admitted at the next step boundary, first token at the end of that step.
    return (math.floor(arrival / STEP_MS) + 1) * STEP_MS + STEP_MS - arrival


def _pairs(delay_in: float, delay_out: float, n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sent = rng.uniform(0, 1000 * STEP_MS)
        direct = _ttft(sent)
        through = _ttft(sent + delay_in) + delay_in + delay_out
        out.append((direct, through))
    return out


def test_shift_of_medians_recovers_the_added_delay_under_step_quantization():
    pairs = _pairs(delay_in=1.5, delay_out=0.5, n=1500, seed=1)
    lo, hi = bootstrap_ci(pairs, median_shift)
    assert lo <= 2.0 <= hi
    assert abs(median_shift(pairs) - 2.0) < 1.0


def test_median_of_pair_differences_sees_only_the_delay_after_the_engine():
    pairs = _pairs(delay_in=1.5, delay_out=0.5, n=4000, seed=2)
    assert abs(median_of_differences(pairs) - 0.5) < 1e-9


def test_bootstrap_interval_is_reproducible_and_ordered():
    pairs = _pairs(delay_in=1.0, delay_out=1.0, n=300, seed=3)
    first = bootstrap_ci(pairs, median_shift)
    assert first == bootstrap_ci(pairs, median_shift)
    assert first[0] <= median_shift(pairs) <= first[1]
