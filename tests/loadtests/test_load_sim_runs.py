"""The harness end to end (``python -m loadtests`` child processes) against the reference server on
the sim engine: clean server passes, the planted over-admission fault fails the run, master + two
workers aggregate, task tokens are refreshed, and the LLM metrics reach Locust's CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.loadtests.conftest import ShortTtlServer, run_harness, sim_args

pytestmark = pytest.mark.slow

SHORT = ["-t", "6s"]
STREAMS_ONLY = [
    *("--weight-chat", "0", "--weight-embed", "0", "--weight-batch", "0", "--weight-pipeline", "0"),
    *("--max-tokens", "64"),
]


def _csv_rows(prefix: Path) -> list[dict[str, str]]:
    with Path(f"{prefix}_stats.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def clean_run(clean_server, tmp_path_factory):
    return run_harness(
        tmp_path_factory.mktemp("clean-run"),
        clean_server.base_url,
        *SHORT,
        "--open-loop-rate",
        "20",
        "--open-loop-arrival",
        "poisson",
    )


def test_clean_server_breaks_no_promise_and_exits_0(clean_run):
    assert clean_run.returncode == 0, clean_run.output[-3000:]
    assert clean_run.summary["violations"] == []
    assert "PASS" in clean_run.output


def test_free_tier_gets_429s_that_are_not_failures(clean_run):
    free = [s for s in clean_run.summary["series"] if s["tier"] == "free"]
    assert sum(s["rate_limited_429"] for s in free) > 0
    assert clean_run.summary["totals"]["failures"] == 0


def test_streams_report_ttft_itl_and_tokens_per_second(clean_run):
    streamed = [s for s in clean_run.summary["series"] if s["ttft_ms"]["n"]]
    assert streamed
    for s in streamed:
        assert s["ttft_ms"]["p50"] > 0 and s["itl_ms"]["p50"] > 0 and s["tokens_per_s"]["p50"] > 0
        assert s["usage_mismatch"] == 0  # the sim sends one token per content chunk


def test_llm_metrics_are_in_locusts_csv(clean_run):
    types = {row["Type"] for row in _csv_rows(clean_run.csv_prefix)}
    assert {"TTFT", "ITL", "TOK/S", "429", "POST", "TOKEN"} <= types


def test_open_loop_records_dispatch_delay(clean_run):
    open_loop = clean_run.summary["open_loop"]
    assert open_loop["arrivals"] > 0
    assert open_loop["dispatch_delay_ms"]["n"] > 0
    assert "DISPATCH" in {row["Type"] for row in _csv_rows(clean_run.csv_prefix)}


def test_over_admission_fault_is_reported_and_exits_non_zero(over_admitting_server, tmp_path):
    run = run_harness(tmp_path, over_admitting_server.base_url, *SHORT)
    assert run.returncode == 1, run.output[-3000:]
    kinds = {(v["kind"], v["requirement"], v["tier"]) for v in run.summary["violations"]}
    assert ("over-admission", "LIMIT-001", "free") in kinds
    assert "LIMIT-001" in run.output


def test_master_with_two_workers_aggregates_their_observations(over_admitting_server, tmp_path):
    # Two free users, spread over two workers: the master must see their overlap in the merged data.
    # Streams only, 64 tokens (about 0.3 s each, back to back): with the task mix, the short requests
    # (embeddings, batch polls) leave so little certain in-flight time that a 6 s run can see no
    # overlap longer than the 50 ms tolerance.
    run = run_harness(
        tmp_path,
        over_admitting_server.base_url,
        *SHORT,
        "--free-users",
        "2",
        "--pro-users",
        "1",
        "--internal-users",
        "1",
        *STREAMS_ONLY,
        workers=2,
    )
    assert run.summary.get("processes") == 2, run.output[-3000:]
    assert run.returncode == 1
    assert any(v["kind"] == "over-admission" for v in run.summary["violations"])
    assert "TTFT" in {row["Type"] for row in _csv_rows(run.csv_prefix)}


def test_task_tokens_are_refreshed_before_they_expire(tmp_path):
    with ShortTtlServer(3, sim_args(tmp_path / "data")) as server:
        run = run_harness(
            tmp_path, server.base_url, "-t", "7s", "--weight-batch", "0", "--weight-pipeline", "0"
        )
    assert run.returncode == 0, run.output[-3000:]
    tokens = run.summary["tokens"]
    # Three keys, tokens living 2-3 s, refreshed about 1.5 s after issue over 7 s: several exchanges each.
    assert tokens["exchanges"] >= 3 * 3
    assert tokens["retries_after_401"] == 0


def test_a_401_for_an_expired_token_is_answered_by_one_refresh(tmp_path):
    # The harness is told tokens live 60 s, the server lets them live 2 s: requests meet 401s.
    with ShortTtlServer(2, sim_args(tmp_path / "data")) as server:
        run = run_harness(
            tmp_path,
            server.base_url,
            "-t",
            "6s",
            "--token-ttl",
            "60",
            "--weight-batch",
            "0",
            "--weight-pipeline",
            "0",
        )
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary["tokens"]["retries_after_401"] > 0
    assert run.summary["totals"]["failures"] == 0
