"""junit.xml parses and says Fail/Error/Disabled the CI way; results.json holds no secret; the HTML
escapes what the target sent; the terminal shows the failure with its reproduce line."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from suite.curl import scrub
from suite.outcomes import FailureDetail, Outcome, TestResult, aggregate, decide_verdict
from suite.report import RunReport, render_summary, write_reports

SECRET = "sk-42ai-very-secret-key"
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def report(catalogue) -> RunReport:
    keys = {"free": SECRET}
    failing = TestResult("test_auth.py::test_token", ("AUTH-001",))
    failing.record(
        Outcome.FAIL,
        failure=FailureDetail(
            message=scrub(f"token exchange with {SECRET} answered without a task token", keys),
            expected='{"task_token": <string>}',
            received=HOSTILE,
            response=f"HTTP 200 (content-type: text/html)\n{HOSTILE}",
            curl='curl -sS -i -X POST http://t/api/token -H "Authorization: Bearer $CONFORM42_KEY_FREE"',
        ),
    )
    erroring = TestResult("test_auth.py::test_jwt", ("AUTH-002",))
    erroring.record(Outcome.ERROR, failure=FailureDetail(message="TargetUnreachable: cannot reach"))
    disabled = TestResult("test_models.py::test_vision", ("MODEL-002",))
    disabled.record(Outcome.DISABLED, reason="no API key for the pro tier")
    passing = TestResult("test_auth.py::test_ttl", ("AUTH-003",))
    passing.record(Outcome.PASS)
    tests = [failing, erroring, disabled, passing]
    selected = [catalogue[i] for i in ("AUTH-001", "AUTH-002", "AUTH-003", "MODEL-002", "MODEL-003")]
    results = aggregate(selected, tests)
    started = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    return RunReport(
        target="http://t",
        profile="42ai",
        level="may",
        config={"keys": {"free": "given"}},
        started=started,
        finished=started + timedelta(seconds=12.5),
        requirements=results,
        tests=tests,
        verdict=decide_verdict(results),
    )


def test_junit_has_failure_error_and_skipped_per_requirement(report, tmp_path):
    write_reports(report, tmp_path)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    cases = {c.get("name", "").split(":")[0]: c for c in root.iter("testcase")}
    assert cases["AUTH-001"].find("failure") is not None
    assert cases["AUTH-002"].find("error") is not None
    skipped = cases["MODEL-002"].find("skipped")
    assert skipped is not None and "Disabled" in skipped.get("message", "")
    not_tested = cases["MODEL-003"].find("skipped")
    assert not_tested is not None and not_tested.get("message", "").startswith("Not tested")
    assert list(cases["AUTH-003"]) == [cases["AUTH-003"].find("properties")]  # a pass has no child
    must = next(s for s in root.iter("testsuite") if "MUST" in s.get("name", ""))
    assert (must.get("failures"), must.get("errors"), must.get("skipped")) == ("1", "1", "2")
    properties = {p.get("name"): p.get("value") for p in cases["AUTH-001"].iter("property")}
    assert properties["requirement"] == "AUTH-001" and properties["level"] == "MUST"


def test_results_json_has_verdict_timing_versions_and_no_secret(report, tmp_path):
    write_reports(report, tmp_path)
    text = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert SECRET not in text
    data = json.loads(text)
    assert data["verdict"] == "NON-CONFORMANT" and data["exit_code"] == 1
    assert data["duration_s"] == 12.5
    assert {"conform42", "python", "httpx", "schemathesis"} <= set(data["versions"])
    auth = next(r for r in data["requirements"] if r["id"] == "AUTH-001")
    assert auth["outcome"] == "Fail"
    assert "$CONFORM42_KEY_FREE" in auth["tests"][0]["failure"]["curl"]


def test_html_is_self_contained_and_escapes_what_the_target_sent(report, tmp_path):
    write_reports(report, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert HOSTILE not in page and "&lt;script&gt;" in page
    # No external assets: the page's one script is inline, nothing is linked, imported or loaded.
    assert page.count("<script") == 1 and "<script>" in page
    assert not re.search(r"<(link|img|iframe|object|embed)\b|\bsrc=|@import|url\(", page)
    assert "http://" not in page.replace("http://t", "") and "https://" not in page
    assert "NON-CONFORMANT" in page and "12.5 s" in page


def test_terminal_summary_shows_failure_reproduce_line_matrix_and_verdict(report):
    text = render_summary(report, width=120)
    assert "FAIL AUTH-001 [MUST]" in text
    assert 'Expected: {"task_token": <string>}' in text and f"Received: {HOSTILE}" in text
    assert "Reproduce with:" in text and "$CONFORM42_KEY_FREE" in text
    assert "ERROR AUTH-002 [MUST]" in text
    assert "auth" in text and "Disabled" in text
    assert "NON-CONFORMANT (1 MUST fail; 1 MUST error; 1 MUST disabled; 1 MUST not tested)" in text
    assert "in 12.5 s" in text
    assert SECRET not in text


def test_terminal_never_wraps_the_reproduce_line(report):
    text = render_summary(report, width=40)
    curl = report.requirements[0].tests[0].failure.curl
    assert any(line.strip() == curl for line in text.splitlines())
