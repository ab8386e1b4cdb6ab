"""``python -m loadtests --compare BASELINE.json`` end to end against the sim engine: reruns of the same
setup are not regressions (five of them, none may cry wolf), a server three times slower per token is.
The same with ``--repeat 3`` on both sides, where the interval is over runs, at the default threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.loadtests.conftest import SIM_TOKEN_DELAY, Run, run_harness, sim_args
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.slow

#: Streams to one model only, 4 s: each tier's cells get tens to a hundred requests.
SETUP = [
    *("-t", "4s", "--models", "42-logic"),
    *("--weight-chat", "0", "--weight-embed", "0", "--weight-batch", "0", "--weight-pipeline", "0"),
]
RERUNS = 5
#: Short runs on a shared machine differ from run to run by more than their requests' spread: the sim's
#: TTFT (about 7 ms) moved by up to 30 % between 4 s reruns on two busy cores. Resampling requests
#: cannot see that, so the gate of single runs is set above it (a three times slower server is +140 %
#: or more); the default threshold is tested over runs (--repeat) below. On a quiet machine, with the
#: warm-up left out, five single reruns stayed within 7.6 % (loadtests/README.md).
THRESHOLD = ["--regression-threshold", "50"]


def _run(tmp: Path, base_url: str, *args: str) -> Run:
    tmp.mkdir(parents=True, exist_ok=True)
    return run_harness(tmp, base_url, *SETUP, *args)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("compare")
    with ServerProcess(sim_args(tmp / "data")) as server:
        run = _run(tmp / "baseline", server.base_url)
        assert run.returncode == 0, run.output[-3000:]
        path = tmp / "baseline.json"
        shutil.copy(tmp / "baseline" / "summary.json", path)
        return path


def test_reruns_of_the_same_setup_are_not_regressions(baseline, tmp_path):
    with ServerProcess(sim_args(tmp_path / "data")) as server:
        runs = [
            _run(tmp_path / f"rerun{i}", server.base_url, "--compare", str(baseline), *THRESHOLD)
            for i in range(RERUNS)
        ]
    for run in runs:
        comparison = run.summary["comparison"]
        assert (run.returncode, comparison["regressions"]) == (0, []), run.output[-3000:]
        assert sum(r["verdict"] != "too-few-samples" for r in comparison["rows"]) >= 8
        assert "compared with" in run.output


def test_a_server_three_times_slower_per_token_is_a_regression(baseline, tmp_path):
    slow = str(3 * float(SIM_TOKEN_DELAY))
    args = [slow if a == SIM_TOKEN_DELAY else a for a in sim_args(tmp_path / "data")]
    with ServerProcess(args) as server:
        run = _run(tmp_path / "slow", server.base_url, "--compare", str(baseline), *THRESHOLD)
    assert run.returncode == 1, run.output[-3000:]
    regressed = {r["metric"] for r in run.summary["comparison"]["rows"] if r["verdict"] == "regression"}
    assert {"ttft", "itl_stream"} & regressed
    assert "REGRESSION" in run.output and "regression(s) against" in run.summary["reasons"][-1]


#: Three runs a side, compared over runs at the default threshold (10 %).
REPEAT = ["--repeat", "3"]


@pytest.fixture(scope="module")
def repeated_baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("compare-repeat")
    with ServerProcess(sim_args(tmp / "data")) as server:
        run = _run(tmp / "baseline", server.base_url, *REPEAT)
        assert run.returncode == 0, run.output[-3000:]
        assert run.summary["runs"]["exit_codes"] == [0, 0, 0]
        path = tmp / "baseline.json"
        shutil.copy(tmp / "baseline" / "summary.json", path)
        return path


def _judged_over(run: Run) -> set[str]:
    return {r["over"] for r in run.summary["comparison"]["rows"] if r["verdict"] != "too-few-samples"}


def test_a_repeated_rerun_of_the_same_setup_is_no_regression_at_the_default_threshold(
    repeated_baseline, tmp_path
):
    with ServerProcess(sim_args(tmp_path / "data")) as server:
        run = _run(tmp_path / "rerun", server.base_url, *REPEAT, "--compare", str(repeated_baseline))
    comparison = run.summary["comparison"]
    assert (run.returncode, comparison["regressions"]) == (0, []), run.output[-3000:]
    assert comparison["threshold_pct"] == 10.0 and _judged_over(run) == {"runs"}
    assert "run 3/3 ... pass" in run.output and "over 3 vs 3 runs" in " ".join(run.output.split())


def test_a_repeated_run_of_a_server_three_times_slower_per_token_is_a_regression(repeated_baseline, tmp_path):
    slow = str(3 * float(SIM_TOKEN_DELAY))
    args = [slow if a == SIM_TOKEN_DELAY else a for a in sim_args(tmp_path / "data")]
    with ServerProcess(args) as server:
        run = _run(tmp_path / "slow", server.base_url, *REPEAT, "--compare", str(repeated_baseline))
    assert run.returncode == 1, run.output[-3000:]
    rows = run.summary["comparison"]["rows"]
    assert {"ttft", "itl_stream"} & {r["metric"] for r in rows if r["verdict"] == "regression"}
    assert _judged_over(run) == {"runs"}
    assert "regression(s) against" in run.summary["reasons"][-1]


def test_an_unusable_baseline_stops_the_run_before_any_load(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"series": [{"tier": "pro", "model": "42-logic"}]}), encoding="utf-8")
    run = run_harness(tmp_path, "http://127.0.0.1:9", "--compare", str(old))
    assert run.returncode == 2
    assert "older harness" in run.output and run.summary == {}
