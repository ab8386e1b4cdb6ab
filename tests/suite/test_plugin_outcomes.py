"""The plugin's classification of real pytest runs: Fail vs Error vs Skip vs Disabled, selection by level,
requirement expression and profile, and the exit code plain pytest returns.

Each test writes a small conformance-style module and runs plain pytest on it in a child process. None
of them talks to a server: ``--target`` names a port nobody asks, because no test uses the ``api``
fixture.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

UNUSED_TARGET = "--target=http://127.0.0.1:9"

OUTCOMES_MODULE = """
import time
import pytest
from suite.checks import ConformanceFailure, TargetUnreachable, disabled
from suite.markers import requirement

@pytest.fixture
def broken_fixture():
    raise RuntimeError("fixture bug")

@pytest.fixture
def nonconforming_fixture():
    raise ConformanceFailure("token exchange failed", expected="HTTP 200", received="HTTP 500")

@requirement("AUTH-001")
def test_pass():
    pass

@requirement("AUTH-002")
def test_conformance_failure():
    raise ConformanceFailure("bad jwt", expected="three segments", received="one")

@requirement("AUTH-004")
def test_plain_assert():
    assert 1 == 2

@requirement("AUTH-005")
def test_unreachable_is_error():
    raise TargetUnreachable("cannot reach the target")

@requirement("AUTH-006")
def test_bug_is_error():
    raise KeyError("oops")

@requirement("AUTH-007")
def test_disabled():
    disabled("no API key for the pro tier")

@requirement("AUTH-008")
def test_skip():
    pytest.skip("not today")

@requirement("AUTH-009")
def test_fixture_error(broken_fixture):
    pass

@requirement("AUTH-010")
def test_fixture_nonconformance(nonconforming_fixture):
    pass

@requirement("AUTH-011")
def test_group_of_failures():
    raise ExceptionGroup("several", [AssertionError("one"), ValueError("two")])

@requirement("AUTH-012")
@pytest.mark.timeout(1)
def test_timeout():
    time.sleep(10)

@requirement("AUTH-013")
def test_other_profile():
    raise AssertionError("must not run under the 42ai profile")
"""


def _results(
    run_pytest, tmp_path: Path, source: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = run_pytest(source, UNUSED_TARGET, "--report=report", *args)
    report = tmp_path / "report" / "results.json"
    assert report.is_file(), result.stdout + result.stderr
    return result, json.loads(report.read_text(encoding="utf-8"))


def _by_test(data: dict[str, Any]) -> dict[str, str]:
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for r in data["requirements"] for t in r["tests"]}
    outcomes.update({t["nodeid"].split("::")[-1]: t["outcome"] for t in data["other_tests"]})
    return outcomes


def test_each_kind_of_ending_gets_its_outcome(run_pytest, tmp_path):
    result, data = _results(run_pytest, tmp_path, OUTCOMES_MODULE)
    assert _by_test(data) == {
        "test_pass": "Pass",
        "test_conformance_failure": "Fail",
        "test_plain_assert": "Fail",
        "test_unreachable_is_error": "Error",
        "test_bug_is_error": "Error",
        "test_disabled": "Disabled",
        "test_skip": "Skip",
        "test_fixture_error": "Error",
        "test_fixture_nonconformance": "Fail",
        "test_group_of_failures": "Fail",
        "test_timeout": "Fail",
        "test_other_profile": "Disabled",
    }
    assert result.returncode == 1  # MUST failures: non-conformant, whatever else happened
    assert data["verdict"] == "NON-CONFORMANT"


def test_details_of_a_failure_and_of_a_timeout(run_pytest, tmp_path):
    _, data = _results(
        run_pytest, tmp_path, OUTCOMES_MODULE, "-k", "conformance_failure or timeout or other_profile"
    )
    by_id = {r["id"]: r for r in data["requirements"]}
    failure = by_id["AUTH-002"]["tests"][0]["failure"]
    assert failure["message"] == "bad jwt"
    assert (failure["expected"], failure["received"]) == ("three segments", "one")
    assert "test exceeded 1 s" in by_id["AUTH-012"]["tests"][0]["failure"]["message"]
    other = data["other_tests"][0]
    assert other["reason"] == "profile 42ai: requirement is fortytwo-only"


def test_errors_alone_make_the_run_inconclusive_exit_2(run_pytest, tmp_path):
    result, data = _results(run_pytest, tmp_path, OUTCOMES_MODULE, "-k", "test_pass or unreachable")
    assert (result.returncode, data["verdict"]) == (2, "INCONCLUSIVE")


def test_passing_musts_are_conformant_exit_0_and_plain_pytest_prints_the_summary(run_pytest, tmp_path):
    result, data = _results(run_pytest, tmp_path, OUTCOMES_MODULE, "-k", "test_pass or test_disabled")
    assert (result.returncode, data["verdict"]) == (0, "CONFORMANT")
    assert "CONFORMANT (1 MUST pass; 1 MUST disabled; " in result.stdout
    assert "Requirements by area" in result.stdout


def test_requirements_expression_deselects_other_tests(run_pytest, tmp_path):
    _, data = _results(run_pytest, tmp_path, OUTCOMES_MODULE, "--requirements", "AUTH-001 or AUTH-002")
    assert sorted(_by_test(data)) == ["test_conformance_failure", "test_pass"]
    assert [r["id"] for r in data["requirements"]] == ["AUTH-001", "AUTH-002"]


SHOULD_MODULE = """
from suite.markers import requirement

@requirement("AUTH-003")
def test_should_level():
    assert False

@requirement("AUTH-001")
def test_must_level():
    pass
"""


def test_level_must_drops_should_requirements(run_pytest, tmp_path):
    result, data = _results(run_pytest, tmp_path, SHOULD_MODULE, "--level", "must")
    assert list(_by_test(data)) == ["test_must_level"]
    assert result.returncode == 0


def test_a_failing_should_does_not_fail_the_run(run_pytest, tmp_path):
    result, data = _results(run_pytest, tmp_path, SHOULD_MODULE)
    assert {r["id"]: r["outcome"] for r in data["requirements"]}["AUTH-003"] == "Fail"
    assert (result.returncode, data["verdict"]) == (0, "CONFORMANT")


def test_fortytwo_profile_disables_42ai_tests(run_pytest, tmp_path):
    _, data = _results(
        run_pytest,
        tmp_path,
        OUTCOMES_MODULE,
        "--profile",
        "fortytwo",
        "-k",
        "test_pass or other_profile",
        "--chat-model",
        "m",
        "--embed-model",
        "e",
    )
    outcomes = _by_test(data)
    assert outcomes["test_pass"] == "Disabled"
    assert outcomes["test_other_profile"] == "Fail"


@pytest.mark.parametrize(
    "args, message",
    [
        (("--requirements", "AUTH and"), "conform42: --requirements"),
        (
            ("--image-url", "file:///etc/passwd"),
            "conform42: --image-url must be a data:, http:// or https://",
        ),
        (("--accept-skip", "LIMIT-001,NOPE-001"), "conform42: --accept-skip: NOPE-001 not in the"),
        (("--target=ftp://x",), "conform42: --target must be an http:// or https:// URL"),
    ],
    ids=["expression", "image-url", "accept-skip", "target-url"],
)
def test_bad_setting_is_a_usage_error_exit_2_with_one_line(run_pytest, args, message):
    result = run_pytest(OUTCOMES_MODULE, UNUSED_TARGET, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1
    assert "CONFORMANT" not in result.stdout and "INCONCLUSIVE" not in result.stdout  # nothing judged
    assert " passed" not in result.stdout and " failed" not in result.stdout  # and no test ran


def test_plugin_is_inert_without_requirement_tests(run_pytest):
    result = run_pytest("def test_ok():\n    assert True\n\ndef test_bad():\n    assert False\n")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED
    assert "Requirements by area" not in result.stdout and "CONFORMANT" not in result.stdout
