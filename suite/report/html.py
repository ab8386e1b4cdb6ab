"""``report.html``: one self-contained page (inline CSS and script, no external assets), read top down:
the verdict, the failures with everything needed to act on them, the area x level matrix, then every
requirement. The sections are in ``html_sections``; style and script in ``html_assets``.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from pathlib import Path

from suite.outcomes import OUTCOME_ORDER
from suite.report.html_assets import CSS, SCRIPT
from suite.report.html_sections import (
    css_class,
    failures_section,
    filter_bar,
    matrix_section,
    render_test,
    requirements_section,
)
from suite.report.model import RunReport
from suite.report.timefmt import human_duration, utc_iso

__all__ = ["FILE_NAME", "render_html", "write_html"]

FILE_NAME = "report.html"


def _verdict(report: RunReport) -> str:
    verdict = report.verdict
    counts = Counter(r.outcome for r in report.requirements)
    summary = "".join(
        f'<span class="{css_class(o)}">{counts[o]} {escape(o.value)}</span>'
        for o in OUTCOME_ORDER
        if counts[o]
    )
    return (
        f'<section id="verdict" class="verdict {escape(verdict.label)}">'
        f'<div class="label">{escape(verdict.label)}</div>'
        f'<p class="line">{escape(verdict.line)}</p><p>{escape(verdict.reason)}</p>'
        f'<p class="counts">all {len(report.requirements)} requirements: {summary}</p></section>'
    )


def _facts(report: RunReport) -> str:
    facts = [
        ("target", f"<code>{escape(report.target)}</code>"),
        ("profile", escape(report.profile)),
        ("level", f"{escape(report.level.upper())} and stronger"),
        ("started", f"{escape(utc_iso(report.started))}"),
        ("finished", f"{escape(utc_iso(report.finished))}"),
        ("duration", escape(human_duration(report.duration_s))),
    ]
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        + "</dl>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
    )


def _appendix(report: RunReport) -> str:
    """Tests of no selected requirement, the redacted configuration and the versions."""
    other = report.unlinked_tests()
    other_html = (
        '<section id="other"><h2>Other tests</h2>' + "".join(render_test(t) for t in other) + "</section>"
        if other
        else ""
    )
    config_rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in report.config.items()
    )
    version_rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in report.versions.items()
    )
    return (
        f"{other_html}<h2>Configuration (secrets redacted)</h2><table>{config_rows}</table>"
        f"<h2>Versions</h2><table>{version_rows}</table>"
    )


def render_html(report: RunReport) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>conform42 report: {escape(report.verdict.label)}</title>
<style>{CSS}</style></head><body>
<h1>conform42 conformance report</h1>
{_verdict(report)}
{_facts(report)}
{filter_bar(report)}
{failures_section(report)}
{matrix_section(report)}
{requirements_section(report)}
{_appendix(report)}
<script>{SCRIPT}</script>
</body></html>
"""


def write_html(report: RunReport, directory: Path) -> Path:
    path = directory / FILE_NAME
    path.write_text(render_html(report), encoding="utf-8")
    return path
