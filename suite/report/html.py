"""``report.html``: one self-contained page (inline CSS, no scripts, no external assets).

Every value is escaped with ``html.escape``: response bodies come from the server under test and may
hold anything, markup included.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from suite.outcomes import OUTCOME_ORDER, Outcome, RequirementResult, TestResult
from suite.report.model import RunReport

__all__ = ["FILE_NAME", "render_html", "write_html"]

FILE_NAME = "report.html"

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f4f4f4}
.Pass{color:#17692b}.Fail{color:#b00020;font-weight:bold}.Error{color:#8a2be2;font-weight:bold}
.Skip{color:#8a6d00}.Disabled,.Not{color:#777}
.verdict{font-size:1.2em;font-weight:bold;padding:.5em;border:2px solid #999;display:inline-block}
.CONFORMANT{border-color:#17692b;color:#17692b}.NON-CONFORMANT{border-color:#b00020;color:#b00020}
.INCONCLUSIVE{border-color:#8a2be2;color:#8a2be2}
pre{background:#f7f7f7;padding:.5em;white-space:pre-wrap;word-break:break-all;margin:.3em 0}
details{margin:.3em 0}summary{cursor:pointer}
"""


def _cls(outcome: Outcome) -> str:
    return outcome.value.split()[0]


def _test_detail(test: TestResult) -> str:
    parts = [
        f'<div><code>{escape(test.nodeid)}</code>: <span class="{_cls(test.outcome)}">'
        f"{escape(test.outcome.value)}</span>"
    ]
    if test.reason:
        parts.append(f" — {escape(test.reason)}")
    parts.append("</div>")
    f = test.failure
    if f is not None:
        parts.append(f"<pre>{escape(f.message)}</pre>")
        if f.expected is not None:
            parts.append(f"<div><b>Expected:</b> {escape(f.expected)}</div>")
        if f.received is not None:
            parts.append(f"<div><b>Received:</b> {escape(f.received)}</div>")
        if f.response:
            parts.append(f"<div><b>Response:</b></div><pre>{escape(f.response)}</pre>")
        if f.curl:
            parts.append(f"<div><b>Reproduce with:</b></div><pre>{escape(f.curl)}</pre>")
    return "".join(parts)


def _requirement_row(result: RequirementResult) -> str:
    r = result.requirement
    outcome = result.outcome
    tests = "".join(_test_detail(t) for t in result.tests) or "no test selected"
    open_attr = " open" if outcome in (Outcome.FAIL, Outcome.ERROR) else ""
    return (
        f'<tr><td id="{escape(r.id)}">{escape(r.id)}</td><td>{escape(r.level)}</td>'
        f"<td>{escape(r.area)}</td>"
        f'<td class="{_cls(outcome)}">{escape(outcome.value)}</td>'
        f"<td>{escape(r.statement)}<details{open_attr}><summary>{len(result.tests)} test(s)</summary>"
        f"{tests}</details></td></tr>"
    )


def render_html(report: RunReport) -> str:
    verdict = report.verdict
    matrix_rows = "".join(
        f"<tr><td>{escape(area)}</td>"
        + "".join(f'<td class="{_cls(o)}">{counts.get(o, 0) or ""}</td>' for o in OUTCOME_ORDER)
        + "</tr>"
        for area, counts in report.matrix().items()
    )
    config_rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in report.config.items()
    )
    version_rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in report.versions.items()
    )
    header = "".join(f"<th>{escape(o.value)}</th>" for o in OUTCOME_ORDER)
    other = report.unlinked_tests()
    other_html = ("<h2>Other tests</h2>" + "".join(_test_detail(t) for t in other)) if other else ""
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>conform42 report: {escape(verdict.label)}</title>
<style>{_CSS}</style></head><body>
<h1>conform42 conformance report</h1>
<p class="verdict {escape(verdict.label)}">{escape(verdict.line)}</p>
<p>{escape(verdict.reason)}</p>
<p>Target <code>{escape(report.target)}</code>, profile {escape(report.profile)},
level {escape(report.level.upper())} and stronger. Started {escape(report.started.isoformat())},
finished {escape(report.finished.isoformat())}, duration {report.duration_s:.1f} s.</p>
{f"<ul>{notes}</ul>" if notes else ""}
<h2>Requirements by area</h2>
<table><tr><th>area</th>{header}</tr>{matrix_rows}</table>
<h2>Requirements</h2>
<table><tr><th>ID</th><th>level</th><th>area</th><th>outcome</th><th>statement and tests</th></tr>
{"".join(_requirement_row(r) for r in report.requirements)}</table>
{other_html}
<h2>Configuration (secrets redacted)</h2><table>{config_rows}</table>
<h2>Versions</h2><table>{version_rows}</table>
</body></html>
"""


def write_html(report: RunReport, directory: Path) -> Path:
    path = directory / FILE_NAME
    path.write_text(render_html(report), encoding="utf-8")
    return path
