"""``--repeat N``: the runs' command lines, pooling their summaries, and the loop of child processes
(children here are ``fake_load_run.py``: no Locust, no server)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from loadtests.compare import CompareSettings, compare_summaries, load_baseline
from loadtests.metrics import Histogram
from loadtests.repeat import child_args, child_env, refusal, repeat_count, run_repeated
from loadtests.report import render, write_json
from loadtests.runs import RunResult, combine, worst_exit
from tests.loadtests.fake_load_run import _summary
from tests.support.server_process import REPO_ROOT

FAKE = [sys.executable, str(Path(__file__).with_name("fake_load_run.py"))]


# ------------------------------------------------------------------------------ command lines
def test_a_run_gets_the_arguments_less_the_repeat_s_own():
    args = [
        *("--host", "http://h", "--repeat", "3", "--compare=base.json", "-t", "4s"),
        *("--summary-json", "out.json", "--summary-html=out.html", "--regression-threshold", "20"),
    ]
    assert child_args(args, Path("runs/run-2.json"), None) == [
        *("--host", "http://h", "-t", "4s", "--regression-threshold", "20"),
        *("--summary-json", "runs/run-2.json"),
    ]
    with_page = child_args(args, Path("r.json"), Path("out.run2.html"))
    assert with_page[-2:] == ["--summary-html", "out.run2.html"]


def test_each_run_writes_locust_s_own_files_under_its_own_name():
    args = [
        *("--host", "http://h", "--csv", "out/stats", "--html=out/locust.html"),
        *("--json-file", "out/stats.json", "--logfile=run.log", "--csv-full-history"),
    ]
    assert child_args(args, Path("r.json"), None, index=2)[:-2] == [
        *("--host", "http://h", "--csv", "out/stats.run2", "--html=out/locust.run2.html"),
        *("--json-file", "out/stats.run2.json", "--logfile=run.run2.log", "--csv-full-history"),
    ]
    env = {"LOCUST_CSV": "s", "LOCUST_HTML": "page.html", "LOCUST_JSON_FILE": "", "LOCUST_HOST": "x.html"}
    assert child_env(env, index=3) == {
        **{"LOCUST_CSV": "s.run3", "LOCUST_HTML": "page.run3.html", "LOCUST_JSON_FILE": ""},
        **{"LOCUST_HOST": "x.html", "PYTHONUNBUFFERED": "1"},
    }


def test_a_run_s_environment_cannot_repeat_or_compare():
    env = {
        "LOCUST_REPEAT": "3",
        "LOCUST_COMPARE": "b.json",
        "LOCUST_SUMMARY_JSON": "x",
        "LOCUST_FREE_USERS": "1",
    }
    assert child_env(env) == {"LOCUST_FREE_USERS": "1", "PYTHONUNBUFFERED": "1"}


def test_the_repeat_count_comes_from_the_command_line_else_the_environment():
    assert repeat_count(["--host", "h"], {}) == 1
    assert repeat_count(["--repeat", "5"], {}) == 5
    assert repeat_count(["--repeat=4"], {"LOCUST_REPEAT": "2"}) == 4
    assert repeat_count([], {"LOCUST_REPEAT": "2"}) == 2
    for bad in (["--repeat", "0"], ["--repeat", "x"], ["--repeat"]):
        with pytest.raises(ValueError, match="whole number"):
            repeat_count(bad, {})


def test_modes_that_are_not_one_headless_run_are_refused():
    assert refusal(["--host", "h", "-t", "5s"], {}) is None
    assert "distributed" in (refusal(["--master"], {}) or "")
    assert "worker" in (refusal([], {"LOCUST_MODE_WORKER": "true"}) or "")
    assert "web UI" in (refusal(["--web"], {}) or "")
    assert "sweeps" in (refusal(["--sweep-rates", "1,2"], {}) or "")
    assert "sweeps" in (refusal([], {"LOCUST_SWEEP": "1"}) or "")


# ------------------------------------------------------------------------------------- pooling
def _ok(index: int, seed: int | None = None) -> RunResult:
    return RunResult(index, 0, _summary(index if seed is None else seed))


def test_pooled_series_merge_the_runs_requests_exactly():
    runs = [_ok(1), _ok(2), _ok(3)]
    pooled = combine(runs, 3)
    (row,) = pooled["series"]
    assert row["requests"] == row["ok"] == 90 and pooled["totals"]["requests"] == 90
    for key in ("ttft", "itl_stream", "e2e", "tps", "itl", "completion_tokens"):
        merged = Histogram()
        for run in runs:
            assert run.summary is not None
            merged.merge(Histogram.from_dict(run.summary["series"][0]["pool"][key]))
        assert Histogram.from_dict(row["pool"][key]).counts == merged.counts
    for key in ("ttft", "e2e"):  # what --compare reads: the requests after each run's warm-up
        assert row["histograms"][key]["n"] == 90
    assert row["ttft_ms"]["p50"] is not None and row["itl_ms"]["n"] == 90 * 7
    assert row["completion_tokens"]["n"] == 90 and row["short_of_max_tokens"] == 0
    assert (pooled["exit_code"], pooled["reasons"]) == (0, [])
    assert pooled["runs"]["exit_codes"] == [0, 0, 0] and len(pooled["runs"]["summaries"]) == 3


def test_a_violation_or_a_crash_in_any_run_fails_the_pool_and_is_named():
    failed = dict(_summary(2), reasons=["1 x server-error [pro]"], exit_code=1)
    failed["violations"] = [
        {"kind": "server-error", "requirement": "", "tier": "pro", "count": 1, "examples": []}
    ]
    runs = [_ok(1), RunResult(2, 1, failed), RunResult(3, -9, None, log="runs/run-3.log")]
    pooled = combine(runs, 3)
    assert pooled["exit_code"] == 1 and pooled["verdict"] == "fail"
    assert pooled["reasons"] == [
        "run 2: 1 x server-error [pro]",
        "run 3: exited -9 without a summary; its output: runs/run-3.log",
    ]
    assert pooled["violations"][0]["run"] == 2
    assert pooled["series"][0]["requests"] == 60  # the runs that wrote a summary
    out = io.StringIO()
    render(pooled, file=out)
    assert "3 runs pooled" in out.getvalue() and "(run 2)" in out.getvalue()


def test_the_worst_exit_code_wins():
    assert worst_exit([0, 0]) == 0
    assert worst_exit([0, 1, 0]) == 1
    assert worst_exit([0, -9]) == 1 and worst_exit([3]) == 1  # a crash or a signal is a failed run
    assert worst_exit([1, 2]) == 2  # a setup problem, as a single run reports it
    assert combine([_ok(1)], 3)["reasons"] == ["only 1 of 3 runs ran"]


def test_the_slo_shown_is_the_worst_run_s():
    a, b = _summary(1), _summary(2)
    a["slo"] = [{"name": "ttft_p95_ms", "threshold": 50.0, "measured": 20.0, "ok": True}]
    b["slo"] = [{"name": "ttft_p95_ms", "threshold": 50.0, "measured": 70.0, "ok": False}]
    (slo,) = combine([RunResult(1, 0, a), RunResult(2, 1, b)], 2)["slo"]
    assert (slo["measured"], slo["ok"], slo["worst_run"]) == (70.0, False, 2)


def test_a_pooled_summary_is_a_baseline_for_a_single_run(tmp_path):
    path = tmp_path / "pooled.json"
    write_json(combine([_ok(1), _ok(2), _ok(3)], 3), path)
    comparison = compare_summaries(load_baseline(path), _summary(4), CompareSettings())
    assert comparison["rows"] and {r["over"] for r in comparison["rows"]} == {"requests"}
    assert comparison["regressions"] == []


# ----------------------------------------------------------------------------- the loop of runs
def _repeat(tmp_path: Path, plan: str, *extra: str, count: int = 3) -> tuple[int, str, list[dict[str, Any]]]:
    out = io.StringIO()
    log = tmp_path / "args.jsonl"
    env = {**os.environ, "FAKE_PLAN": plan, "FAKE_ARGS": str(log), "PYTHONPATH": str(REPO_ROOT)}
    args = ["--repeat", str(count), "--summary-json", str(tmp_path / "pooled.json"), *extra]
    code = run_repeated(args, env=env, command=FAKE, out=out)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return code, out.getvalue(), calls


def test_runs_go_one_after_another_and_pool_into_one_summary(tmp_path):
    code, output, calls = _repeat(tmp_path, "ok,ok,ok", "--summary-html", str(tmp_path / "page.html"))
    assert code == 0, output
    assert [c["run"] for c in calls] == [1, 2, 3]
    assert "--repeat" not in calls[0]["args"] and str(tmp_path / "page.run2.html") in calls[1]["args"]
    assert "run 1/3 ... pass, 30 requests" in output and "run 3/3 ... pass" in output
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["series"][0]["requests"] == 90 and pooled["runs"]["exit_codes"] == [0, 0, 0]
    assert sorted(p.name for p in (tmp_path / "pooled.json.runs").glob("run-*.json")) == [
        "run-1.json",
        "run-2.json",
        "run-3.json",
    ]
    assert "3 runs pooled" in output and "PASS" in output


def test_a_crashed_run_is_reported_with_its_output_and_fails_the_whole(tmp_path):
    code, output, calls = _repeat(tmp_path, "ok,crash,fail")
    assert code == 1 and len(calls) == 3
    assert "run 2/3 ... CRASHED: exit 3, no summary" in output and "planted crash" in output
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["reasons"][0].startswith("run 2: exited 3 without a summary")
    assert pooled["reasons"][1] == "run 3: 1 x server-error [pro]"


def test_a_setup_problem_stops_the_loop(tmp_path):
    code, output, calls = _repeat(tmp_path, "usage")
    assert code == 2 and len(calls) == 1 and "stopping" in output


def test_an_unusable_baseline_stops_before_any_run(tmp_path):
    code, _, calls = _repeat(tmp_path, "ok", "--compare", str(tmp_path / "missing.json"))
    assert code == 2 and calls == []


def test_the_repeated_runs_are_compared_with_a_baseline(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    assert _repeat(base, "ok,ok,ok")[0] == 0
    code, output, _ = _repeat(tmp_path, "ok,ok,ok", "--compare", str(base / "pooled.json"))
    comparison = json.loads((tmp_path / "pooled.json").read_text())["comparison"]
    assert {r["over"] for r in comparison["rows"]} == {"runs"}
    assert "interval over 3 vs 3 runs" in " ".join(output.split())  # the title may wrap
    assert code == 0 and comparison["regressions"] == []  # the fake runs are the same three


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_running_child_and_the_loop(tmp_path):
    log = tmp_path / "args.jsonl"
    script = (
        "import sys; from loadtests.repeat import run_repeated; "
        f"sys.exit(run_repeated(['--repeat', '3', '--summary-json', {str(tmp_path / 'p.json')!r}], "
        f"command={FAKE!r}))"
    )
    env = {**os.environ, "FAKE_PLAN": "ok,sleep,ok", "FAKE_ARGS": str(log), "PYTHONPATH": str(REPO_ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A shell's background job (`make test &`) starts with SIGINT ignored, which Python then keeps:
        # give the parent the terminal's default, as when a user presses Ctrl-C.
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
            time.sleep(0.1)
        parent.send_signal(signal.SIGINT)  # to the parent only: it must stop the child itself
        out, _ = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.communicate()  # reaped and its pipe closed, not left to a later test's warnings
    assert parent.returncode == 130, out
    assert "interrupted: 1 of 3 runs finished; no pooled summary written" in out
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["run"] for c in calls] == [1, 2]  # run 3 never started
    with pytest.raises(ProcessLookupError):
        os.kill(calls[1]["pid"], 0)  # the sleeping run was stopped, not left behind
    assert not (tmp_path / "p.json").exists()


def test_python_m_loadtests_refuses_a_bad_repeat_before_locust():
    out = subprocess.run(
        [sys.executable, "-m", "loadtests", "--repeat", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and "whole number" in out.stderr


@pytest.mark.slow
def test_plain_locust_refuses_to_repeat():
    # Only python -m loadtests can repeat (a process per run); Locust itself would run once.
    from loadtests.__main__ import LOCUSTFILE

    out = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--repeat", "3", "-t", "1s"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2 and "--repeat needs python -m loadtests" in out.stdout + out.stderr
