"""Comparing a run with a baseline (``loadtests.compare``): bootstrap intervals over requests, the
regression rule (interval excludes zero on the bad side and the change passes the threshold), and
the summary's verdict."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtests.collector import Collector
from loadtests.compare import (
    METRICS,
    BaselineError,
    CompareSettings,
    bootstrap_percentile,
    compare_histograms,
    compare_summaries,
    judge,
    load_baseline,
    percentile_arg,
    threshold_arg,
)
from loadtests.metrics import Histogram, stream_timing
from loadtests.report import Thresholds, add_comparison, render, summarise, write_json

TTFT = next(m for m in METRICS if m.key == "ttft")
TPS = next(m for m in METRICS if m.key == "tps")


def _hist(values_ms: np.ndarray) -> Histogram:
    h = Histogram()
    for v in values_ms:
        h.add(float(v) * 1000)
    return h


def _latencies(seed: int, n: int = 400, median_ms: float = 50.0, sigma: float = 0.5) -> np.ndarray:
    """Log-normal latencies: skewed to the right like real ones."""
    return np.random.default_rng(seed).lognormal(np.log(median_ms), sigma, n)


def _verdict(old: Histogram, new: Histogram, metric=TTFT, threshold: float = 10.0) -> str:
    return judge(compare_histograms(old, new), metric, threshold)


def test_identical_samples_are_no_regression():
    values = _latencies(1)
    estimate = compare_histograms(_hist(values), _hist(values))
    assert estimate.diff == 0 and estimate.diff_lo <= 0 <= estimate.diff_hi
    assert judge(estimate, TTFT, 10.0) == "insignificant"


def test_a_30_percent_slower_ttft_is_a_regression():
    values = _latencies(2)
    estimate = compare_histograms(_hist(values), _hist(values * 1.3))
    assert estimate.rel == pytest.approx(0.3, abs=0.01)
    assert estimate.rel_lo is not None and 0 < estimate.rel_lo < 0.3 < estimate.rel_hi  # type: ignore[operator]
    assert judge(estimate, TTFT, 10.0) == "regression"


def test_the_shortcut_resamples_like_resampling_the_requests():
    # Drawing the order statistic from a Beta must give the interval that resampling n values gives.
    values = _latencies(9, n=300)
    rng = np.random.default_rng(0)
    brute = [np.median(rng.choice(values, values.size)) for _ in range(4000)]
    brute_lo, brute_hi = np.percentile(brute, [2.5, 97.5])
    lo, hi = np.percentile(
        bootstrap_percentile(_hist(values), 0.5, 20_000, np.random.default_rng(1)), [2.5, 97.5]
    )
    assert lo / 1000 == pytest.approx(brute_lo, rel=0.02) and hi / 1000 == pytest.approx(brute_hi, rel=0.02)


def test_a_faster_run_is_an_improvement_not_a_regression():
    values = _latencies(3)
    assert _verdict(_hist(values), _hist(values * 0.7)) == "improvement"


def test_for_tokens_per_second_fewer_is_worse():
    values = _latencies(4, median_ms=120.0)  # same histogram shape; the unit does not matter here
    assert _verdict(_hist(values), _hist(values * 0.7), metric=TPS) == "regression"
    assert _verdict(_hist(values), _hist(values * 1.3), metric=TPS) == "improvement"


def test_a_real_change_below_the_threshold_is_not_a_regression():
    values = _latencies(5, n=5000, sigma=0.2)
    assert _verdict(_hist(values), _hist(values * 1.05)) == "below-threshold"
    assert _verdict(_hist(values), _hist(values * 1.05), threshold=3.0) == "regression"


def test_the_same_seed_gives_the_same_interval():
    old, new = _hist(_latencies(6)), _hist(_latencies(7))
    assert compare_histograms(old, new, seed=[0, 1]) == compare_histograms(old, new, seed=[0, 1])


def test_a_tail_percentile_can_be_compared():
    values = _latencies(8, n=2000)
    slower_tail = np.where(values > np.percentile(values, 80), values * 2, values)
    old, new = _hist(values), _hist(slower_tail)
    assert judge(compare_histograms(old, new, percentile=95), TTFT, 10.0) == "regression"
    assert judge(compare_histograms(old, new, percentile=50), TTFT, 10.0) == "insignificant"


# --------------------------------------------------------------------------- summaries end to end
def _collector(token_gap_s: float, streams: int = 60, seed: int = 0) -> Collector:
    """Streams of 8 tokens for pro/42-logic; the gaps jitter by 20 % around ``token_gap_s``."""
    rng = np.random.default_rng(seed)
    c = Collector()
    for _ in range(streams):
        gaps = token_gap_s * rng.uniform(0.8, 1.2, 8)
        times = np.cumsum(gaps).tolist()
        c.record_ok("pro", "42-logic", times[-1] * 1000)
        c.record_stream("pro", "42-logic", stream_timing(0.0, times, times[-1], usage_tokens=8))
    return c


def _summary(token_gap_s: float, seed: int = 0) -> dict[str, Any]:
    return summarise(_collector(token_gap_s, seed=seed), Thresholds())


def test_the_summary_keeps_per_request_histograms_and_survives_json(tmp_path):
    path = tmp_path / "baseline.json"
    write_json(_summary(0.01), path)
    baseline = load_baseline(path)
    histograms = baseline["series"][0]["histograms"]
    assert {m.key for m in METRICS} <= histograms.keys()
    assert histograms["itl_stream"]["n"] == 60  # one value per stream, not per token


def test_a_slower_server_fails_the_run_and_names_the_metric():
    baseline, current = _summary(0.01), _summary(0.03, seed=1)
    comparison = compare_summaries(baseline, current, CompareSettings(baseline="base.json"))
    verdicts = {r["metric"]: r["verdict"] for r in comparison["rows"]}
    assert verdicts["ttft"] == verdicts["itl_stream"] == verdicts["e2e"] == "regression"
    assert verdicts["tps"] == "regression"
    add_comparison(current, comparison)
    assert current["exit_code"] == 1 and current["verdict"] == "fail"
    assert any("regression: pro 42-logic TTFT p50" in r for r in comparison["regressions"])
    (reason,) = current["reasons"]  # one line for the verdict, however many cells regressed
    assert reason.startswith("4 regression(s) against base.json: pro 42-logic TTFT +")
    out = io.StringIO()
    render(current, file=out)
    assert "REGRESSION" in out.getvalue() and "compared with base.json" in out.getvalue()
    json.dumps(current)  # the comparison is part of the JSON summary


def test_the_same_setup_passes_and_keeps_exit_code_0():
    current = _summary(0.01, seed=1)
    comparison = compare_summaries(_summary(0.01), current, CompareSettings())
    assert comparison["regressions"] == []
    add_comparison(current, comparison)
    assert current["exit_code"] == 0 and "comparison" in current


def _noisy_collector(seed: int, streams: int = 80) -> Collector:
    """Six tiers/models of streams with log-normal TTFT (sigma 0.6) and gaps (sigma 0.4)."""
    rng = np.random.default_rng(seed)
    c = Collector()
    for tier in ("free", "pro", "internal"):
        for model in ("42-logic", "42-general"):
            for _ in range(streams):
                ttft = rng.lognormal(np.log(0.02), 0.6)
                times = (ttft + np.cumsum(rng.lognormal(np.log(0.005), 0.4, 16))).tolist()
                c.record_ok(tier, model, times[-1] * 1000)
                c.record_stream(tier, model, stream_timing(0.0, times, times[-1], usage_tokens=16))
    return c


@pytest.mark.parametrize("seed", range(10))
def test_noisy_but_equal_runs_are_never_a_regression(seed):
    # Two independent runs of one server: 24 tier/model/metric cells, 80 requests each, wide spread.
    baseline = summarise(_noisy_collector(2 * seed), Thresholds())
    current = summarise(_noisy_collector(2 * seed + 1), Thresholds())
    comparison = compare_summaries(baseline, current, CompareSettings())
    assert len(comparison["rows"]) == 24
    assert comparison["regressions"] == []


def test_too_few_requests_get_no_verdict():
    baseline = summarise(_collector(0.01, streams=5), Thresholds())
    current = summarise(_collector(0.05, streams=5, seed=1), Thresholds())
    rows = compare_summaries(baseline, current, CompareSettings())["rows"]
    assert rows and {r["verdict"] for r in rows} == {"too-few-samples"}


def test_series_on_one_side_only_are_listed_not_compared():
    baseline = _summary(0.01)
    other = _collector(0.01)
    other.series[("internal", "42-coder")] = other.series.pop(("pro", "42-logic"))
    comparison = compare_summaries(baseline, summarise(other, Thresholds()), CompareSettings())
    assert comparison["rows"] == []
    assert comparison["only_in_baseline"] == ["pro 42-logic"]
    assert comparison["only_in_run"] == ["internal 42-coder"]


def test_an_unusable_baseline_is_refused(tmp_path: Path):
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
    old = _summary(0.01)
    for row in old["series"]:
        del row["histograms"]
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(BaselineError, match="older harness"):
        load_baseline(tmp_path / "old.json")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(BaselineError, match="not a load summary"):
        load_baseline(tmp_path / "list.json")


def test_option_values_are_checked():
    assert percentile_arg("95") == 95.0 and threshold_arg("0") == 0.0
    for bad in ("0", "101", "nan"):
        with pytest.raises(ValueError):
            percentile_arg(bad)
    with pytest.raises(ValueError):
        threshold_arg("-1")
