"""The capacity sweep's pure parts: request records from Locust's events, the ladder, per-step
statistics and goodput, the saturation decision, the time series and the HTML report."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from loadtests.html_report import render_html
from loadtests.report import Thresholds
from loadtests.request_log import RequestLog, RequestRecord
from loadtests.sweep_plan import DEFAULT_RATES, GoodputSlo, SweepPlan
from loadtests.sweep_stats import highest_meeting, percentile, saturation, step_rows, window_stats
from loadtests.timeseries import in_flight_peaks, time_series


def _options(**kw: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "sweep": False,
        "sweep_rates": "",
        "sweep_users": "",
        "sweep_step_seconds": 10.0,
        "sweep_warmup_seconds": 2.0,
        "sweep_full": False,
    }
    return SimpleNamespace(**{**base, **kw})


# ------------------------------------------------------------------------------------ request log
def test_a_stream_is_joined_from_its_post_and_figures():
    log = RequestLog()
    log.event("g1", "POST", "pro 42-logic stream", 200.0, 900, False, 100.0)
    log.event("g1", "TTFT", "pro 42-logic stream", 20.0, 0, False, 100.0)
    log.event("g1", "ITL", "pro 42-logic stream", 5.0, 0, False, 100.0)
    log.event("g1", "TOK/S", "pro 42-logic stream", 160.0, 32, False, 100.0)
    (r,) = log.records
    assert (r.tier, r.kind, r.outcome, r.e2e_ms, r.ttft_ms, r.itl_ms, r.tokens) == (
        "pro",
        "stream",
        "ok",
        200.0,
        20.0,
        5.0,
        32,
    )
    assert r.start == pytest.approx(99.8)


def test_a_chat_takes_the_tokens_fired_before_its_post_and_other_events_are_skipped():
    log = RequestLog()
    log.event("g", "TOKEN", "pro /api/token", 3.0, 0, False, 1.0)
    log.event("g", "DISPATCH", "open-loop dispatch delay", 1.0, 0, False, 1.0)
    log.event("g", "TOK/S", "free 42-logic chat", 100.0, 12, False, 2.0)
    log.event("g", "POST", "free 42-logic chat", 120.0, 10, False, 2.0)
    log.event("g", "429", "free 42-logic chat", 2.0, 0, False, 3.0)
    log.event("g", "429", "free 42-logic batch-poll", 0.0, 0, False, 3.0)
    log.event("g", "POST", "free 42-embed embed", 9.0, 0, True, 4.0)
    assert [(r.kind, r.outcome, r.tokens) for r in log.records] == [
        ("chat", "ok", 12),
        ("chat", "429", 0),
        ("embed", "fail", 0),
    ]


def test_a_stream_without_tokens_is_kept_when_the_next_request_starts_or_at_the_end():
    log = RequestLog()
    log.event("a", "POST", "internal 42-logic stream", 50.0, 0, False, 10.0)
    log.event("b", "POST", "internal 42-logic stream", 50.0, 0, False, 10.0)
    assert log.records == []
    log.event("a", "503", "internal 42-logic stream", 1.0, 0, False, 11.0)
    assert [r.outcome for r in log.records] == ["ok", "503"]
    merged = RequestLog()
    merged.merge_dict(log.to_dict())  # to_dict takes in "b" as well
    assert len(merged.records) == 3


def test_a_request_still_in_flight_at_the_end_is_kept_as_unfinished():
    log = RequestLog()
    log.sent("a", "internal 42-logic stream", 10.0)
    log.sent("b", "pro 42-logic chat", 10.5)
    assert log.in_flight == 2
    log.event("a", "POST", "internal 42-logic stream", 500.0, 0, False, 10.6)
    log.event("a", "TOK/S", "internal 42-logic stream", 50.0, 8, False, 10.6)
    log.settled("a")
    assert log.in_flight == 1  # "b" was killed mid-request: no event, never settled
    merged = RequestLog()
    merged.merge_dict(log.to_dict())
    assert [(r.tier, r.kind, r.start, r.outcome) for r in merged.records] == [
        ("internal", "stream", pytest.approx(10.1), "ok"),
        ("pro", "chat", 10.5, "unfinished"),
    ]
    assert log.in_flight == 0


def test_a_request_whose_user_was_stopped_is_unfinished_at_once():
    log = RequestLog()
    log.sent("a", "pro 42-logic stream", 3.0)
    log.abandon("a")
    log.abandon("b")  # nothing pending: nothing recorded
    assert log.in_flight == 0
    assert [(r.kind, r.start, r.outcome) for r in log.records] == [("stream", 3.0, "unfinished")]


def test_a_request_sent_again_by_the_same_greenlet_replaces_the_settled_one():
    log = RequestLog()
    log.sent("a", "free 42-logic chat", 1.0)
    log.settled("a")
    log.sent("a", "free 42-logic chat", 2.0)
    log.flush()
    assert [(r.start, r.outcome) for r in log.records] == [(2.0, "unfinished")]


# ----------------------------------------------------------------------------------------- plan
def test_plan_from_options():
    assert SweepPlan.from_options(_options()) is None
    assert SweepPlan.from_options(_options(sweep=True)).loads == DEFAULT_RATES  # type: ignore[union-attr]
    plan = SweepPlan.from_options(_options(sweep_users="1, 2,4"))
    assert plan is not None and (plan.mode, plan.loads) == ("users", (1.0, 2.0, 4.0))
    for bad in (
        _options(sweep_users="1.5"),
        _options(sweep_rates="0,1"),
        _options(sweep_rates="a"),
        _options(sweep_rates="1", sweep_users="1"),
        _options(sweep=True, sweep_warmup_seconds=10.0),
    ):
        with pytest.raises(ValueError):
            SweepPlan.from_options(bad)


def test_plan_steps_and_windows():
    plan = SweepPlan("rates", (1.0, 2.0, 4.0), step_seconds=10, warmup_seconds=2)
    assert [plan.step_at(t) for t in (0, 9.9, 10, 29.9, 30)] == [0, 0, 1, 2, None]
    assert plan.load_at(35) == 4.0
    windows = plan.windows(1000.0, 1025.0)  # cut in the third step
    assert [(w.load, w.measured_from, w.end, w.seconds) for w in windows] == [
        (1.0, 1002.0, 1010.0, 8.0),
        (2.0, 1012.0, 1020.0, 8.0),
        (4.0, 1022.0, 1025.0, 3.0),
    ]


# ------------------------------------------------------------------------------------ statistics
def test_a_sweep_stopped_early_reports_only_its_judged_steps():
    plan = SweepPlan("rates", (1.0, 2.0, 4.0, 8.0), step_seconds=10, warmup_seconds=2)
    # Stopped after judging two steps, 2.5 s into the third (its warm-up and half a second more).
    assert [w.load for w in plan.measured_windows(0.0, 22.5, stopped_after=2)] == [1.0, 2.0]
    # Cut short otherwise (Ctrl-C, -t): the last step's measured part is kept ...
    assert [w.load for w in plan.measured_windows(0.0, 22.5, stopped_after=None)] == [1.0, 2.0, 4.0]
    # ... unless the cut came within its warm-up.
    assert [w.load for w in plan.measured_windows(0.0, 21.0, stopped_after=None)] == [1.0, 2.0]


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0


def _rec(tier: str, start: float, outcome: str = "ok", ttft: float | None = 10.0, kind: str = "stream"):
    return RequestRecord(tier, kind, start, outcome, 100.0 if outcome != "429" else None, ttft, 5.0, 10)


def test_window_stats_goodput_counts_requests_that_met_every_slo():
    records = [
        _rec("pro", 0, ttft=10.0),
        _rec("pro", 1, ttft=300.0),  # misses the TTFT SLO
        _rec("pro", 2, kind="chat", ttft=None),  # TTFT applies to streams only
        _rec("pro", 3, outcome="429"),
        _rec("pro", 4, outcome="503"),
    ]
    s = window_stats(records, 2.0, GoodputSlo(ttft_ms=200.0))
    assert (s["sent"], s["ok"], s["rate_limited_429"], s["unavailable_503"]) == (5, 3, 1, 1)
    assert s["sent_per_s"] == 2.5 and s["admitted_per_s"] == 1.5
    assert s["goodput_per_s"] == 1.0
    assert s["attainment"] == 0.5  # 2 good of 4 admitted-or-503 (the 429 is not held against it)
    assert s["output_tokens_per_s"] == 15.0
    assert s["share_429"] == 0.2 and s["ttft_ms"]["n"] == 2


def test_unfinished_requests_are_sent_and_missed_and_keep_a_step_from_meeting_the_slos():
    records = [_rec("pro", 0), _rec("pro", 1), RequestRecord("pro", "stream", 1.5, "unfinished")]
    s = window_stats(records, 2.0, GoodputSlo(ttft_ms=200.0))
    assert (s["sent"], s["ok"], s["unfinished"], s["failures"]) == (3, 2, 1, 0)
    assert s["admitted_per_s"] == 1.5 and s["attainment"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["ttft_ms"]["n"] == 2 and s["e2e_ms"]["n"] == 2  # their latency is unknown
    plan = SweepPlan("rates", (1.0,), step_seconds=2, warmup_seconds=0)
    rows = step_rows(records, plan.windows(0.0, 2.0), GoodputSlo(), Thresholds())
    assert rows[0]["breaches"] == ["1 request(s) unfinished (the run or their user ended first)"]


def test_dropped_arrivals_are_not_sent_and_keep_a_step_from_meeting_the_slos():
    log = RequestLog()
    log.dropped("internal", "stream", 1.2)
    records = [_rec("internal", 1.0), *log.records]
    s = window_stats(records, 2.0, GoodputSlo())
    assert (s["sent"], s["dropped"], s["sent_per_s"], s["attainment"]) == (1, 1, 0.5, 1.0)
    plan = SweepPlan("rates", (1.0,), step_seconds=2, warmup_seconds=0)
    rows = step_rows(records, plan.windows(0.0, 2.0), GoodputSlo(), Thresholds())
    assert rows[0]["breaches"] == ["1 arrival(s) dropped by the client"]
    assert time_series(records, {}, 0.0, 2.0)["sent_per_s"] == [0.0, 1.0]


def test_step_rows_attribute_by_start_time_and_judge_each_step():
    plan = SweepPlan("rates", (1.0, 2.0), step_seconds=10, warmup_seconds=2)
    windows = plan.windows(0.0, 20.0)
    records = [_rec("free", 1.0), _rec("free", 5.0), _rec("internal", 12.5, ttft=900.0), _rec("free", 15.0)]
    rows = step_rows(records, windows, GoodputSlo(ttft_ms=500.0), Thresholds())
    assert [r["all"]["sent"] for r in rows] == [1, 2]  # the warm-up request at 1.0 is left out
    assert sorted(rows[1]["tiers"]) == ["free", "internal"]
    assert rows[0]["meets_slo"] and not rows[1]["meets_slo"]
    assert highest_meeting(rows) is rows[0]
    rows = step_rows(records, windows, GoodputSlo(), Thresholds(ttft_p95_ms=100.0))
    assert rows[1]["breaches"] == ["ttft p95 900 ms > 100"]


def _row(load: float, admitted: float, goodput: float) -> dict[str, object]:
    return {"load": load, "all": {"admitted_per_s": admitted, "goodput_per_s": goodput}, "meets_slo": True}


def test_saturation_when_admitted_rate_stops_growing_or_goodput_halves():
    assert saturation([_row(1, 1, 1)]) is None
    assert saturation([_row(1, 1, 1), _row(2, 2, 2)]) is None
    assert "stopped growing" in str(saturation([_row(1, 1, 1), _row(2, 2, 2), _row(4, 2.05, 2)]))
    assert "below half" in str(saturation([_row(1, 1, 1), _row(2, 2, 4), _row(4, 4, 1.9)]))


# ---------------------------------------------------------------------------------- time series
def test_in_flight_peaks_per_bucket():
    intervals = [(0.5, 2.5), (1.0, 1.5), (1.5, 3.0)]
    assert in_flight_peaks(intervals, 0.0, 1.0, 4) == [1, 2, 2, 1]


def test_time_series_counts_by_start_bucket():
    records = [_rec("pro", 0.2), _rec("pro", 0.7, outcome="429"), _rec("pro", 1.5, outcome="fail")]
    records.append(RequestRecord("pro", "stream", 0.9, "unfinished"))
    series = time_series(records, {"k1": ("pro", [(0.1, 1.2)])}, 0.0, 2.0)
    assert series["t"] == [0.0, 1.0]
    assert series["sent_per_s"] == [3.0, 1.0] and series["r429_per_s"] == [1.0, 0.0]
    assert series["failures_per_s"] == [0.0, 1.0]  # unfinished is not a failure
    assert series["in_flight"]["k1"] == {"tier": "pro", "limit": 3, "peak": [1, 1]}


# ---------------------------------------------------------------------------------------- HTML
def test_html_report_has_the_plots_and_the_step_table():
    plan = SweepPlan("rates", (1.0, 2.0), step_seconds=10, warmup_seconds=0)
    records = [_rec("pro", t / 2) for t in range(40)]
    rows = step_rows(records, plan.windows(0.0, 20.0), GoodputSlo(ttft_ms=50.0), Thresholds())
    summary = {
        "verdict": "pass",
        "reasons": [],
        "series": [],
        "violations": [],
        "slo": [],
        "notices": ["a <note>"],
        "sweep": {
            "plan": plan.to_dict(),
            "slo": GoodputSlo(ttft_ms=50.0).to_dict(),
            "steps": rows,
            "highest_load_meeting_slo": 2.0,
            "highest_step_meeting_slo": 1,
            "stopped_early": None,
            "drain": {"seconds": 2.5, "unfinished": 3},
        },
    }
    page = render_html(summary, time_series(records, {}, 0.0, 20.0), [0.0, 10.0])
    assert "drained in 2.5 s" in page and "3 still unfinished" in page
    assert page.count("<svg") == 6  # 3 vs load, 3 over time (no in-flight plot without intervals)
    assert 'id="sweep-steps"' in page and "a &lt;note&gt;" in page
    for fetch in ('src="http', 'href="http', "<script", "<link"):  # nothing fetched from the network
        assert fetch not in page
