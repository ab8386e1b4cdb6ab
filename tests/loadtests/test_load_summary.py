"""Collector merging (what distributed workers send) and the summary's verdict and exit code."""

from __future__ import annotations

import io
import json
import time

from loadtests.collector import Collector
from loadtests.metrics import stream_timing
from loadtests.promises import Violation
from loadtests.report import Thresholds, render, summarise


def _collector_with_one_stream(tier: str = "pro") -> Collector:
    c = Collector()
    c.record_ok(tier, "42-logic", 300.0)
    c.record_stream(tier, "42-logic", stream_timing(0.0, [0.1, 0.2, 0.3], 0.3, usage_tokens=3))
    return c


def test_clean_run_passes_with_exit_code_0():
    summary = summarise(_collector_with_one_stream(), Thresholds())
    assert summary["exit_code"] == 0
    assert summary["series"][0]["ttft_ms"]["p50"] == 100.0


def test_violation_fails_the_run_and_is_named():
    c = _collector_with_one_stream()
    c.record_violation(Violation("429-retry-after", "LIMIT-004", "free", "429 without Retry-After"))
    summary = summarise(c, Thresholds())
    assert summary["exit_code"] == 1
    assert summary["violations"][0]["requirement"] == "LIMIT-004"


def test_over_admission_is_found_across_merged_workers():
    # Each worker alone kept within the free limit; together they had two requests in flight.
    a, b = Collector(), Collector()
    a.record_interval("k", "free", 0.0, 1.0)
    b.record_interval("k", "free", 0.5, 1.5)
    assert not a.overlaps() and not b.overlaps()
    merged = Collector()
    merged.merge_dict(json.loads(json.dumps(a.to_dict())))
    merged.merge_dict(json.loads(json.dumps(b.to_dict())))
    kinds = [v["kind"] for v in merged.all_violations()]
    assert kinds == ["over-admission"]


def test_internal_tier_intervals_are_not_kept():
    c = Collector()
    c.record_interval("k", "internal", 0.0, 1.0)
    assert c.intervals == {}


def test_slo_breach_sets_the_exit_code():
    summary = summarise(_collector_with_one_stream(), Thresholds(ttft_p95_ms=50.0))
    assert summary["exit_code"] == 1
    assert any("ttft_p95_ms" in r for r in summary["reasons"])


def test_error_rate_counts_failures_but_not_429():
    c = _collector_with_one_stream()
    stats = c.stats("free", "42-logic")
    stats.requests += 10
    stats.rate_limited += 10
    assert summarise(c, Thresholds(error_rate=0.0))["exit_code"] == 0
    stats.requests += 1
    stats.failures += 1
    assert summarise(c, Thresholds(error_rate=0.0))["exit_code"] == 1


def test_a_run_without_requests_fails():
    assert summarise(Collector(), Thresholds())["exit_code"] == 1


def test_render_names_the_violation():
    c = _collector_with_one_stream()
    c.record_violation(Violation("server-error", None, "pro", "HTTP 500"))
    out = io.StringIO()
    render(summarise(c, Thresholds()), file=out)
    assert "[server-error]" in out.getvalue()
    assert "FAIL" in out.getvalue()


def test_uncaught_harness_errors_fail_the_run():
    summary = summarise(
        _collector_with_one_stream(), Thresholds(), harness_errors=["1 x AttributeError: boom"]
    )
    assert summary["exit_code"] == 1


def test_token_figures_reach_the_summary_per_series_and_per_turn():
    worker = Collector()
    worker.record_work("pro", "42-logic", 1, 32, 40, 32)
    worker.record_work("pro", "42-logic", 2, 32, 90, 20)
    worker.record_work("pro", "42-logic", 2, 16, None, 16)  # no prompt_tokens in the usage
    merged = Collector()
    merged.merge_dict(json.loads(json.dumps(worker.to_dict())))
    summary = summarise(merged, Thresholds())
    row = summary["series"][0]
    assert row["prompt_tokens"]["n"] == 2 and row["prompt_tokens"]["p90"] == 90.0
    assert row["completion_tokens"]["n"] == 3 and row["max_tokens_asked"]["p50"] == 32.0
    assert row["short_of_max_tokens"] == 1
    assert summary["prompt_tokens_by_turn"]["1"]["p50"] == 40.0
    assert summary["prompt_tokens_by_turn"]["2"]["p50"] == 90.0
    out = io.StringIO()
    render(summary, file=out)
    assert "tokens per request" in out.getvalue()
    assert "turn 2: 90 / 90 / 90 (n=1)" in out.getvalue()


def test_requests_sent_in_the_warm_up_are_left_out_of_what_a_comparison_reads():
    c = Collector()
    c.warmup_until = time.perf_counter() + 0.15  # the first request below was sent in the warm-up
    c.record_stream("pro", "42-logic", stream_timing(0.0, [0.01, 0.02], 0.02, usage_tokens=2))
    c.record_ok("pro", "42-logic", 20.0)
    time.sleep(0.2)
    c.record_stream("pro", "42-logic", stream_timing(0.0, [0.03, 0.04], 0.04, usage_tokens=2))
    c.record_ok("pro", "42-logic", 40.0)
    # A request that ended after the warm-up but was sent in it stays out: it counts from its send.
    c.record_ok("pro", "42-logic", 300.0)
    merged = Collector()
    merged.merge_dict(c.to_dict())  # as a distributed worker's observations reach the master
    for collector in (c, merged):
        (row,) = summarise(collector, Thresholds())["series"]
        assert row["requests"] == 3 and row["ttft_ms"]["n"] == 2 and row["e2e_ms"]["n"] == 3
        hist = row["histograms"]
        assert [hist[key]["n"] for key in ("ttft", "itl_stream", "tps", "e2e")] == [1, 1, 1, 1]
        assert hist["ttft"]["counts"] == {"30000": 1}


def test_the_values_kept_after_the_warm_up_are_those_compare_reads():
    from loadtests.collector import COMPARED
    from loadtests.compare import METRICS

    assert tuple(m.key for m in METRICS) == COMPARED
