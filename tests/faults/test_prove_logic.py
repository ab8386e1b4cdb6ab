"""prove.py's bookkeeping, on fabricated suite results: parsing, judging, scoring, reporting."""

from __future__ import annotations

import json
import sys

import pytest

from tests.faults.catalogue import FAULTS, Fault
from tests.faults.prove import (
    CleanSummary,
    FaultResult,
    SuiteRun,
    gates,
    judge,
    main,
    parse_results,
    parse_stdout,
    profile_for,
    render,
    run_suite,
    score,
    suite_command,
    summary,
)


def fault(name="stream_two_finish_reasons", area="streaming", requirements=("STREAM-007",)):
    return Fault(name, area, tuple(requirements), "a test fault", lambda app: app)


def results_file(tmp_path, outcomes, exit_code=1, levels=None):
    data = {
        "conform42_report": 1,
        "verdict": {0: "CONFORMANT", 1: "NON-CONFORMANT", 2: "INCONCLUSIVE"}[exit_code],
        "exit_code": exit_code,
        "requirements": [
            {"id": rid, "level": (levels or {}).get(rid, "MUST"), "outcome": outcome, "tests": []}
            for rid, outcome in outcomes.items()
        ],
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_parse_results_reads_exit_code_verdict_outcomes_and_levels(tmp_path):
    path = results_file(tmp_path, {"AUTH-005": "Fail", "AUTH-004": "Pass"}, levels={"AUTH-004": "MUST"})
    code, verdict, outcomes, levels = parse_results(path)
    assert (code, verdict) == (1, "NON-CONFORMANT")
    assert outcomes == {"AUTH-005": "Fail", "AUTH-004": "Pass"}
    assert levels["AUTH-004"] == "MUST"


def test_parse_results_accepts_a_mapping_of_ids(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"requirements": {"CHAT-001": "Pass", "CHAT-012": {"outcome": "Fail"}}}))
    assert parse_results(path)[2] == {"CHAT-001": "Pass", "CHAT-012": "Fail"}


def test_parse_results_refuses_a_non_object(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        parse_results(path)


def test_parse_stdout_takes_the_worst_outcome_per_requirement():
    text = (
        "PASS STREAM-007 [SHOULD] one test\nFAIL STREAM-007 [SHOULD] POST /v1/chat/completions (stream): "
        "expected 1 finish_reason chunk, got 2\nSKIP BATCH-007\n"
    )
    assert parse_stdout(text) == {"STREAM-007": "Fail", "BATCH-007": "Skip"}


def test_caught_needs_non_conformant_exit_and_a_failed_requirement_of_the_fault():
    assert judge(fault(), SuiteRun(1, {"STREAM-007": "Fail"})).caught
    assert judge(fault(), SuiteRun(1, {"STREAM-007": "Fail"})).status == "caught"


def test_a_failure_of_another_requirement_does_not_catch_the_fault():
    result = judge(fault(), SuiteRun(1, {"STREAM-007": "Pass", "CHAT-001": "Fail"}))
    assert not result.caught
    assert result.status == "undetected"
    assert result.outcomes() == {"STREAM-007": "Pass"}


def test_a_failed_should_without_non_conformant_verdict_is_flagged_not_caught():
    result = judge(fault(), SuiteRun(0, {"STREAM-007": "Fail"}))
    assert not result.caught
    assert result.status == "flagged"
    assert result.named == ["STREAM-007"]


def test_a_run_that_never_produced_outcomes_is_an_error():
    result = judge(fault(), SuiteRun(None, error="the suite did not finish within 5 s"))
    assert result.status == "error"
    assert result.outcomes() == {"STREAM-007": "absent"}


def test_score_per_area_and_overall():
    results = [
        judge(fault("a", "auth", ("AUTH-005",)), SuiteRun(1, {"AUTH-005": "Fail"})),
        judge(fault("b", "auth", ("AUTH-007",)), SuiteRun(0, {"AUTH-007": "Pass"})),
        judge(fault("c", "chat", ("CHAT-012",)), SuiteRun(1, {"CHAT-012": "Fail"})),
    ]
    per_area, overall = score(results)
    assert {area: (s.caught, s.planted) for area, s in per_area.items()} == {"auth": (1, 2), "chat": (1, 1)}
    assert (overall.caught, overall.planted) == (2, 3)
    assert str(overall) == "2/3 (67%)"
    assert list(per_area) == ["auth", "chat"]  # catalogue order


def test_summary_and_render_list_undetected_faults_with_their_outcomes():
    results = [judge(fault("missed", "auth", ("AUTH-005", "SDK-008")), SuiteRun(0, {"AUTH-005": "Pass"}))]
    data = summary(results)
    assert data["undetected"] == ["missed"]
    assert data["mutation_score"] == {"caught": 0, "planted": 1, "ratio": 0.0, "flagged": 0}
    json.dumps(data)  # serialisable
    text = render(results)
    assert "UNDETECTED missed [auth, 42ai] (exit 0): AUTH-005 Pass, SDK-008 absent" in text
    assert "overall     0/1 (0%)" in text


def test_clean_summary_counts_false_failures():
    clean = CleanSummary([SuiteRun(0, {"CHAT-001": "Pass"}), SuiteRun(1, {"CHAT-001": "Fail"})])
    assert not clean.clean
    assert clean.to_dict()["false_failures"] == 1
    assert "run 2: exit 1, failed: CHAT-001" in render([], clean)
    assert CleanSummary([SuiteRun(0, {"CHAT-001": "Pass"})]).clean


def test_suite_command_passes_target_keys_report_and_requirement_filter(tmp_path):
    command = suite_command("http://127.0.0.1:1", tmp_path, ["AUTH-005", "SDK-008"])
    assert command[1:5] == ["-m", "suite", "run", "--target"]
    assert command[command.index("--requirements") + 1] == "AUTH-005 or SDK-008"
    assert {"--key-free", "--key-pro", "--key-internal", "--report"} <= set(command)


def test_run_suite_reads_the_results_file_of_the_command(tmp_path):
    report = tmp_path / "report"
    script = (
        "import json, pathlib, sys; d = pathlib.Path(sys.argv[1]); d.mkdir(exist_ok=True); "
        "(d / 'results.json').write_text(json.dumps({'exit_code': 1, 'verdict': 'NON-CONFORMANT', "
        "'requirements': [{'id': 'CHAT-012', 'level': 'MUST', 'outcome': 'Fail'}]})); sys.exit(1)"
    )
    command = [sys.executable, "-c", script, str(report)]
    run = run_suite("http://unused", report, command=command, timeout_s=30)
    assert run.exit_code == 1
    assert run.failed == ["CHAT-012"]
    assert run.error is None


def test_run_suite_falls_back_to_terminal_output_and_kills_on_timeout(tmp_path):
    script = "print('FAIL CHAT-012 [MUST] usage', flush=True); import time; time.sleep(30)"
    run = run_suite("http://unused", tmp_path, command=[sys.executable, "-c", script], timeout_s=1.5)
    assert run.exit_code is None
    assert "did not finish" in (run.error or "")
    assert run.failed == ["CHAT-012"]


def test_result_dict_is_json_ready():
    result = FaultResult("x", "auth", ("AUTH-005",), SuiteRun(1, {"AUTH-005": "Fail"}))
    assert json.loads(json.dumps(result.to_dict()))["status"] == "caught"


def test_list_prints_the_catalogue(capsys):
    assert main(["--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(FAULTS)


def test_unknown_fault_is_a_usage_error(capsys):
    assert main(["--faults", "no_such_fault"]) == 2
    assert "no fault named" in capsys.readouterr().err


def test_flagged_faults_are_counted_beside_the_score():
    results = [judge(fault(), SuiteRun(2, {"STREAM-007": "Fail"}))]
    _, overall = score(results)
    assert (overall.caught, overall.flagged) == (0, 1)
    assert str(overall) == "0/1 (0%, 1 more flagged)"
    assert "FLAGGED" in render(results)


def test_profile_is_the_one_where_the_fault_breaks_a_must():
    assert profile_for(FAULTS["auth_token_never_expires"]) == "42ai"
    assert gates(FAULTS["auth_token_never_expires"])
    assert profile_for(FAULTS["chat_wrong_object"]) == "fortytwo"  # CHAT-005 MUST (fortytwo), CHAT-006 SHOULD
    assert gates(FAULTS["chat_wrong_object"])
    assert profile_for(FAULTS["stream_two_finish_reasons"]) == "42ai"  # STREAM-007 is a SHOULD everywhere
    assert gates(FAULTS["stream_two_finish_reasons"])  # the proof runs with --gate may


def test_suite_command_names_the_profile(tmp_path):
    command = suite_command("http://127.0.0.1:1", tmp_path, profile="fortytwo")
    assert command[command.index("--profile") + 1] == "fortytwo"


def test_behind_an_intermediary_an_inconclusive_run_on_the_fault_s_requirement_is_held():
    run = SuiteRun(2, {"STREAM-007": "Skip"})
    behind = judge(fault(), run, via="slow_proxy")
    assert behind.held and not behind.caught and behind.status == "inconclusive"
    # Directly in front of the server the same run is not enough: the fault must be caught there.
    assert not judge(fault(), run).held
    # Behind an intermediary CONFORMANT is never enough, nor INCONCLUSIVE about something else.
    assert not judge(fault(), SuiteRun(0, {"STREAM-007": "Pass"}), via="nginx").held
    assert not judge(fault(), SuiteRun(2, {"STREAM-007": "Pass", "CHAT-001": "Skip"}), via="nginx").held
    _, overall = score([behind])
    assert (overall.caught, overall.planted) == (1, 1)


def test_clean_runs_at_the_must_gate_count_only_must_failures():
    run = SuiteRun(0, {"LIMIT-007": "Fail", "CHAT-001": "Pass"}, levels={"LIMIT-007": "SHOULD"})
    assert CleanSummary([run], must_only=True).clean
    assert not CleanSummary([run]).clean
    failing = SuiteRun(1, {"LIMIT-002": "Fail"}, levels={"LIMIT-002": "MUST"})
    assert CleanSummary([failing], must_only=True).false_failures == [["LIMIT-002"]]
