"""Comparing summaries of repeated runs (``--repeat``): the interval over runs sees run-to-run drift
that a bootstrap over requests cannot, and still finds a real slowdown."""

from __future__ import annotations

import io

import numpy as np
import pytest

from loadtests.collector import Collector
from loadtests.compare import CompareSettings, compare_summaries
from loadtests.intervals import compare_run_values, t_quantile
from loadtests.metrics import stream_timing
from loadtests.report import Thresholds, render, summarise
from loadtests.runs import RunResult, combine

CELLS = [(tier, model) for tier in ("free", "pro", "internal") for model in ("42-logic", "42-general")]


#: Run-to-run drift of the whole run (the machine), sigma on the log scale.
DRIFT = 0.1


def _run(rng: np.random.Generator, slowdown: float = 1.0, streams: int = 150) -> dict[str, object]:
    """One run: six tiers/models of log-normal streams. The whole run is slower or faster by a drift
    factor (sigma ``DRIFT``), each cell by a little more (sigma 3 %)."""
    drift = slowdown * rng.lognormal(0.0, DRIFT)
    c = Collector()
    for tier, model in CELLS:
        factor = drift * rng.lognormal(0.0, 0.03)
        for _ in range(streams):
            ttft = factor * rng.lognormal(np.log(0.02), 0.5)
            times = (ttft + np.cumsum(factor * rng.lognormal(np.log(0.005), 0.3, 16))).tolist()
            c.record_ok(tier, model, times[-1] * 1000)
            c.record_stream(tier, model, stream_timing(0.0, times, times[-1], usage_tokens=16))
    return summarise(c, Thresholds())


def _repeated(rng: np.random.Generator, runs: int, slowdown: float = 1.0) -> dict[str, object]:
    return combine([RunResult(i + 1, 0, _run(rng, slowdown)) for i in range(runs)], runs)


def _regressions(baseline: dict[str, object], current: dict[str, object]) -> list[str]:
    comparison = compare_summaries(baseline, current, CompareSettings())
    regressions: list[str] = comparison["regressions"]
    return regressions


def test_t_quantiles_match_the_tables():
    for level, df, expected in ((0.95, 4, 2.776), (0.95, 1, 12.706), (0.99, 10, 3.169), (0.95, 1e6, 1.960)):
        assert t_quantile(level, df) == pytest.approx(expected, abs=1e-3)


def test_the_interval_over_runs_is_on_the_ratio_of_geometric_means():
    est = compare_run_values([10.0, 11.0, 12.0], [20.0, 22.0, 24.0])
    assert est.rel == pytest.approx(1.0) and est.diff_lo > 0  # a clean doubling
    assert est.rel_lo is not None and est.rel_hi is not None and est.rel_lo < 1.0 < est.rel_hi
    same = compare_run_values([10.0, 11.0, 12.0], [12.0, 10.0, 11.0])
    assert same.rel == pytest.approx(0.0) and same.diff_lo < 0 < same.diff_hi
    with pytest.raises(ValueError):
        compare_run_values([10.0], [10.0, 11.0])  # one run has no spread to speak of


@pytest.mark.parametrize("seed", range(6))
def test_reruns_with_run_level_drift_are_no_regression_over_runs(seed):
    rng = np.random.default_rng(seed)
    baseline, current = _repeated(rng, 3), _repeated(rng, 3)
    comparison = compare_summaries(baseline, current, CompareSettings())
    assert len(comparison["rows"]) == 24 and {r["over"] for r in comparison["rows"]} == {"runs"}
    assert all((r["runs_old"], r["runs_new"]) == (3, 3) for r in comparison["rows"])
    assert comparison["regressions"] == []


def test_over_requests_the_same_drift_passes_for_a_regression():
    # Why the interval over runs exists: single runs with the same drift, bootstrapped over their
    # requests, call a regression for the drift of the machine in some of these seeds.
    flagged = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        flagged += bool(_regressions(_run(rng), _run(rng)))
    assert flagged >= 1


@pytest.mark.parametrize("seed", range(3))
def test_a_server_twice_as_slow_is_a_regression_over_runs(seed):
    # Five runs a side: with three, the table-wide interval is about 4.8 times the runs' spread wide
    # (log scale), so with 10 % drift a doubling shows only in about 60 % of such comparisons.
    rng = np.random.default_rng(100 + seed)
    baseline, current = _repeated(rng, 5), _repeated(rng, 5, slowdown=2.0)
    comparison = compare_summaries(baseline, current, CompareSettings(baseline="base.json"))
    regressed = {
        (r["tier"], r["model"], r["metric"]) for r in comparison["rows"] if r["verdict"] == "regression"
    }
    assert len(regressed) == 24, comparison["rows"]
    assert "over 5 vs 5 runs" in comparison["regressions"][0]
    out = io.StringIO()
    current["comparison"] = comparison
    render(current, file=out)
    assert "interval over 5 vs 5 runs" in " ".join(out.getvalue().split())


def test_one_side_of_a_single_run_is_compared_over_requests():
    rng = np.random.default_rng(7)
    comparison = compare_summaries(_repeated(rng, 3), _run(rng), CompareSettings())
    assert {r["over"] for r in comparison["rows"]} == {"requests"}
    assert (comparison["runs_old"], comparison["runs_new"]) == (3, 1)


def test_a_cell_with_one_run_of_values_falls_back_to_requests_and_is_marked():
    rng = np.random.default_rng(8)
    baseline, current = _repeated(rng, 3), _repeated(rng, 3)
    for run in current["runs"]["summaries"][1:]:  # type: ignore[index]
        run["series"] = [s for s in run["series"] if (s["tier"], s["model"]) != ("free", "42-logic")]
    rows = compare_summaries(baseline, current, CompareSettings())["rows"]
    over = {(r["tier"], r["model"]): r["over"] for r in rows}
    assert over[("free", "42-logic")] == "requests" and over[("pro", "42-logic")] == "runs"
    out = io.StringIO()
    render({**current, "comparison": compare_summaries(baseline, current, CompareSettings())}, file=out)
    assert "* over requests" in out.getvalue()
