"""The sections of ``report.html``, each a function of the run that returns escaped HTML.

Every value passes through ``html.escape``: response bodies come from the server under test and may hold
anything, markup included. Elements a filter may hide carry ``data-outcome``, ``data-level`` and
``data-area`` (see ``html_assets.SCRIPT``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from html import escape

from suite.catalogue import LEVELS
from suite.outcomes import OUTCOME_ORDER, Outcome, RequirementResult, TestResult
from suite.report.model import RunReport
from suite.report.timefmt import human_duration

__all__ = [
    "css_class",
    "failures_section",
    "filter_bar",
    "matrix_section",
    "render_test",
    "requirements_section",
]


def css_class(outcome: Outcome) -> str:
    """The outcome's class name: its first word (``Not tested`` -> ``Not``)."""
    return outcome.value.split()[0]


def _badge(outcome: Outcome) -> str:
    return f'<span class="badge {css_class(outcome)}">{escape(outcome.value.upper())}</span>'


def _filter_attrs(outcome: Outcome, level: str, area: str) -> str:
    return f'data-outcome="{escape(outcome.value)}" data-level="{escape(level)}" data-area="{escape(area)}"'


def _failure_body(test: TestResult) -> str:
    """Message, Expected/Received, response excerpt and curl line: all open, nothing behind a click."""
    f = test.failure
    if f is None:
        return f"<p>{escape(test.reason or test.outcome.value)}</p>"
    parts = [f'<pre class="message">{escape(f.message)}</pre>']
    pairs = [(k, v) for k, v in (("Expected", f.expected), ("Received", f.received)) if v is not None]
    if pairs:
        parts.append(
            "<dl>" + "".join(f"<dt>{k}</dt><dd><code>{escape(v)}</code></dd>" for k, v in pairs) + "</dl>"
        )
    if f.response:
        parts.append(f'<div class="label">Response</div><pre class="response">{escape(f.response)}</pre>')
    if f.curl:
        parts.append(f'<div class="label">Reproduce with</div><pre class="curl">{escape(f.curl)}</pre>')
    return "".join(parts)


def _failure_card(result: RequirementResult | None, test: TestResult) -> str:
    if result is not None:
        r = result.requirement
        head = (
            f'{_badge(test.outcome)} <a href="#{escape(r.id)}">{escape(r.id)}</a>'
            f'<span class="tag">{escape(r.level)}</span><span class="tag">{escape(r.area)}</span>'
        )
        statement = f'<p class="statement">{escape(r.statement)}</p>'
        attrs = _filter_attrs(test.outcome, r.level, r.area)
    else:
        head = f"{_badge(test.outcome)} (no requirement)"
        statement = ""
        attrs = _filter_attrs(test.outcome, "", "")
    return (
        f'<article class="card card-{css_class(test.outcome)}" {attrs}><h3>{head}</h3>{statement}'
        f'<p class="test">test <code>{escape(test.nodeid)}</code></p>{_failure_body(test)}</article>'
    )


def failures_section(report: RunReport) -> str:
    """Every failed or errored test, requirement order, then those of no selected requirement."""
    bad = (Outcome.FAIL, Outcome.ERROR)
    cards = [_failure_card(r, t) for r, t in report.failures()]
    cards += [_failure_card(None, t) for t in report.unlinked_tests() if t.outcome in bad]
    body = "".join(cards) if cards else '<p class="none">No test failed or errored.</p>'
    return f'<section id="failures"><h2>Failures and errors ({len(cards)})</h2>{body}</section>'


def _counts(counts: Counter[Outcome]) -> str:
    return "".join(
        f'<span class="n {css_class(o)}" title="{escape(o.value)}">{counts[o]} {escape(o.value)}</span>'
        for o in OUTCOME_ORDER
        if counts.get(o)
    )


def matrix_section(report: RunReport) -> str:
    """Areas down, levels across, each cell the requirements' outcome counts; totals last."""
    rows = report.matrix_by_level()
    levels = [lv for lv in LEVELS if any(lv in by_level for by_level in rows.values())]
    header = "".join(f"<th>{escape(lv)}</th>" for lv in levels)
    lines = []
    totals: dict[str, Counter[Outcome]] = {lv: Counter() for lv in [*levels, "all"]}
    for area, by_level in rows.items():
        cells = []
        area_all: Counter[Outcome] = Counter()
        for lv in levels:
            counts = by_level.get(lv, Counter())
            cells.append(f"<td>{_counts(counts)}</td>")
            totals[lv].update(counts)
            area_all.update(counts)
        totals["all"].update(area_all)
        lines.append(
            f'<tr><td class="area">{escape(area)}</td>{"".join(cells)}<td>{_counts(area_all)}</td></tr>'
        )
    total_cells = "".join(f"<td>{_counts(totals[lv])}</td>" for lv in [*levels, "all"])
    lines.append(f'<tr class="total"><td class="area">total</td>{total_cells}</tr>')
    return (
        '<section id="matrix"><h2>Requirements by area and level</h2>'
        f'<table class="matrix"><tr><th class="area">area</th>{header}<th>all levels</th></tr>'
        f"{''.join(lines)}</table></section>"
    )


def _buttons(dim: str, label: str, values: Iterable[tuple[str, str]]) -> str:
    buttons = [f'<button type="button" data-dim="{dim}" data-value="" aria-pressed="true">all</button>']
    buttons += [
        f'<button type="button" data-dim="{dim}" data-value="{escape(v)}" aria-pressed="false">'
        f"{escape(text)}</button>"
        for v, text in values
    ]
    return (
        f'<div class="group" role="group" aria-label="{label}"><span>{label}</span>{"".join(buttons)}</div>'
    )


def filter_bar(report: RunReport) -> str:
    """Outcome, level and area buttons. ``hidden`` until the script shows it: without the script the
    buttons could do nothing, and the page shows everything anyway."""
    outcomes = Counter(r.outcome for r in report.requirements)
    levels = Counter(r.requirement.level for r in report.requirements)
    areas = Counter(r.requirement.area for r in report.requirements)
    return (
        '<nav id="filters" hidden>'
        + _buttons(
            "outcome",
            "outcome",
            ((o.value, f"{o.value} ({outcomes[o]})") for o in OUTCOME_ORDER if outcomes[o]),
        )
        + _buttons("level", "level", ((lv, f"{lv} ({levels[lv]})") for lv in LEVELS if levels[lv]))
        + _buttons("area", "area", ((a, f"{a} ({n})") for a, n in areas.items()))
        + '<div id="filter-status"></div></nav>'
    )


def render_test(test: TestResult) -> str:
    """One test of a requirement: node ID, outcome, time, reason and any failure details."""
    head = (
        f'<div><code>{escape(test.nodeid)}</code>: <span class="{css_class(test.outcome)}">'
        f"{escape(test.outcome.value)}</span> ({human_duration(test.duration_s)})"
    )
    if test.reason:
        head += f" — {escape(test.reason)}"
    head += "</div>"
    if test.failure is None:
        return head
    return head + _failure_body(test)


def _requirement_row(result: RequirementResult) -> str:
    r = result.requirement
    outcome = result.outcome
    tests = "".join(render_test(t) for t in result.tests) or "no test selected"
    return (
        f'<tr id="{escape(r.id)}" {_filter_attrs(outcome, r.level, r.area)}><td>{escape(r.id)}</td>'
        f"<td>{escape(r.level)}</td><td>{escape(r.area)}</td>"
        f'<td class="outcome {css_class(outcome)}">{escape(outcome.value)}</td>'
        f"<td>{escape(r.statement)}<details><summary>{len(result.tests)} test(s)</summary>"
        f"{tests}</details></td></tr>"
    )


def requirements_section(report: RunReport) -> str:
    """The full table, catalogue order; each requirement's tests folded (failures are shown above)."""
    rows = "".join(_requirement_row(r) for r in report.requirements)
    return (
        f'<section id="requirements"><h2>All requirements ({len(report.requirements)})</h2>'
        '<table class="requirements"><tr><th>ID</th><th>level</th><th>area</th><th>outcome</th>'
        f"<th>statement and tests</th></tr>{rows}</table></section>"
    )
