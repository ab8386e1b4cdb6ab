"""The terminal summary: each failure schemathesis-style, the area matrix and the verdict line.

Rendered with rich into a string that the pytest terminal reporter writes, so it lands in the same
stream as pytest's own output (and is captured by CI logs) whatever pytest's capture mode is.
"""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from suite.outcomes import OUTCOME_ORDER, Outcome, RequirementResult, TestResult
from suite.report.model import RunReport

__all__ = ["render_failure", "render_summary"]

_STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "bold red",
    Outcome.ERROR: "bold magenta",
    Outcome.SKIP: "yellow",
    Outcome.DISABLED: "dim",
    Outcome.NOT_TESTED: "dim",
}
_VERDICT_STYLE = {"CONFORMANT": "bold green", "NON-CONFORMANT": "bold red", "INCONCLUSIVE": "bold magenta"}


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def render_failure(result: RequirementResult | None, test: TestResult) -> RenderableType:
    """``FAIL AUTH-001 [MUST] statement``, the test, Expected/Received, response, Reproduce with."""
    label = test.outcome.value.upper()
    if result is not None:
        r = result.requirement
        head = Text.assemble(
            (f"{label} ", _STYLE[test.outcome]), (f"{r.id} [{r.level}] ", "bold"), r.statement
        )
    else:
        head = Text.assemble((f"{label} ", _STYLE[test.outcome]), ("(no requirement) ", "bold"))
    lines: list[RenderableType] = [head, Text(f"  test: {test.nodeid}", style="dim")]
    failure = test.failure
    if failure is not None:
        lines.append(Text(_indent(failure.message, "  ")))
        if failure.expected is not None:
            lines.append(Text.assemble(("  Expected: ", "bold"), failure.expected))
        if failure.received is not None:
            lines.append(Text.assemble(("  Received: ", "bold"), failure.received))
        if failure.response:
            lines.append(Text("  Response:", style="bold"))
            lines.append(Text(_indent(failure.response)))
        if failure.curl:
            lines.append(Text("  Reproduce with:", style="bold"))
            lines.append(Text(_indent(failure.curl)))
    return Group(*lines, Text(""))


def _matrix(report: RunReport) -> Table:
    table = Table(title="Requirements by area", title_justify="left", show_edge=False)
    table.add_column("area")
    for outcome in OUTCOME_ORDER:
        table.add_column(outcome.value, justify="right", style=_STYLE[outcome])
    totals = dict.fromkeys(OUTCOME_ORDER, 0)
    for area, counts in report.matrix().items():
        table.add_row(area, *(str(counts.get(o, 0) or "") for o in OUTCOME_ORDER))
        for o in OUTCOME_ORDER:
            totals[o] += counts.get(o, 0)
    table.add_row(Text("total", style="bold"), *(str(totals[o]) for o in OUTCOME_ORDER))
    return table


def render_summary(
    report: RunReport, *, width: int = 100, color: bool = False, written: list[str] | None = None
) -> str:
    """The whole conform42 summary as text (ANSI colours when ``color``)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=color, no_color=not color, highlight=False, soft_wrap=True
    )  # a wrapped curl line would not paste
    console.rule("[bold]conform42[/]")
    failures = report.failures()
    unlinked = [t for t in report.unlinked_tests() if t.outcome in (Outcome.FAIL, Outcome.ERROR)]
    if failures or unlinked:
        console.print(Text("Failures and errors", style="bold underline"))
        console.print()
        for result, test in failures:
            console.print(render_failure(result, test))
        for test in unlinked:
            console.print(render_failure(None, test))
    console.print(_matrix(report))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))
    if written:
        console.print(Text("report: " + ", ".join(written), style="dim"))
    verdict = report.verdict
    console.print(
        Text.assemble(
            (verdict.line, _VERDICT_STYLE.get(verdict.label, "bold")),
            f" in {report.duration_s:.1f} s",
            (f"  [{report.profile} profile, {report.level.upper()} and stronger, {report.target}]", "dim"),
        )
    )
    if verdict.label != "CONFORMANT" or "skip" in verdict.reason:
        console.print(Text(f"  {verdict.reason}", style="dim"))
    return buffer.getvalue()
