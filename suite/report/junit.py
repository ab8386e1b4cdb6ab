"""``junit.xml``: one testcase per requirement, one testsuite per level, for CI test views.

A requirement is what an implementer acts on, so it is the testcase (name ``AUTH-001``, classname
``conform42.<level>.<area>``); the tests behind it are ``test`` properties. Fail -> ``<failure>``,
Error -> ``<error>``, Skip / Disabled / Not tested -> ``<skipped>`` with the reason. SHOULD and MAY
requirements sit in their own testsuites so a CI view can tell a gating failure from advice.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from suite.catalogue import LEVELS
from suite.outcomes import Outcome, RequirementResult
from suite.report.model import RunReport

__all__ = ["FILE_NAME", "build_junit", "write_junit"]

FILE_NAME = "junit.xml"


def _failure_text(result: RequirementResult) -> tuple[str, str]:
    """(one-line message, full text) of a requirement's failed or errored tests."""
    bad = [t for t in result.tests if t.outcome is result.outcome]
    first = bad[0].failure.message.splitlines()[0] if bad and bad[0].failure else result.outcome.value
    lines: list[str] = []
    for test in bad:
        lines.append(f"{test.nodeid}: {test.outcome.value}")
        if test.failure is not None:
            f = test.failure
            lines.append(f"  {f.message}")
            if f.expected is not None:
                lines.append(f"  Expected: {f.expected}")
            if f.received is not None:
                lines.append(f"  Received: {f.received}")
            if f.response:
                lines.append("  Response: " + f.response.replace("\n", "\n    "))
            if f.curl:
                lines.append(f"  Reproduce with: {f.curl}")
    return f"[{result.requirement.level}] {first}", "\n".join(lines)


def _testcase(parent: ET.Element, result: RequirementResult) -> None:
    r = result.requirement
    case = ET.SubElement(
        parent,
        "testcase",
        {
            "name": f"{r.id}: {r.statement}",
            "classname": f"conform42.{r.level.lower()}.{r.area}",
            "time": f"{sum(t.duration_s for t in result.tests):.3f}",
        },
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("requirement", r.id),
        ("level", r.level),
        ("profile", r.profile),
        ("outcome", result.outcome.value),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for test in result.tests:
        value = f"{test.nodeid}: {test.outcome.value}"
        ET.SubElement(properties, "property", {"name": "test", "value": value})
    outcome = result.outcome
    if outcome in (Outcome.FAIL, Outcome.ERROR):
        message, text = _failure_text(result)
        tag = "failure" if outcome is Outcome.FAIL else "error"
        element = ET.SubElement(case, tag, {"message": message, "type": outcome.value})
        element.text = text
    elif outcome in (Outcome.SKIP, Outcome.DISABLED, Outcome.NOT_TESTED):
        reasons = sorted({t.reason for t in result.tests if t.reason})
        reason = "; ".join(reasons) if reasons else "no test selected"
        ET.SubElement(case, "skipped", {"message": f"{outcome.value}: {reason}"})


def build_junit(report: RunReport) -> ET.Element:
    root = ET.Element(
        "testsuites",
        {
            "name": "conform42",
            "time": f"{report.duration_s:.3f}",
            "timestamp": report.started.isoformat(),
        },
    )
    for level in LEVELS:
        results = [r for r in report.requirements if r.requirement.level == level]
        if not results:
            continue

        def count(*outcomes: Outcome, results: list[RequirementResult] = results) -> str:
            return str(sum(1 for r in results if r.outcome in outcomes))

        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": f"conform42 {level} ({report.profile})",
                "tests": str(len(results)),
                "failures": count(Outcome.FAIL),
                "errors": count(Outcome.ERROR),
                "skipped": count(Outcome.SKIP, Outcome.DISABLED, Outcome.NOT_TESTED),
                "time": f"{sum(t.duration_s for r in results for t in r.tests):.3f}",
                "timestamp": report.started.isoformat(),
            },
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (
            ("target", report.target),
            ("profile", report.profile),
            ("verdict", report.verdict.line),
            ("duration_s", f"{report.duration_s:.1f}"),
        ):
            ET.SubElement(properties, "property", {"name": name, "value": value})
        for result in results:
            _testcase(suite, result)
    ET.indent(root)
    return root


def write_junit(report: RunReport, directory: Path) -> Path:
    path = directory / FILE_NAME
    ET.ElementTree(build_junit(report)).write(path, encoding="utf-8", xml_declaration=True)
    return path
