"""The conform42 reports: terminal summary, ``junit.xml``, ``results.json`` and ``report.html``."""

from __future__ import annotations

from pathlib import Path

from suite.report.html import write_html
from suite.report.json_report import write_json
from suite.report.junit import write_junit
from suite.report.model import RunReport
from suite.report.terminal import render_summary

__all__ = ["RunReport", "render_summary", "write_reports"]


def write_reports(report: RunReport, directory: Path) -> list[Path]:
    """Write the three report files into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [write_junit(report, directory), write_json(report, directory), write_html(report, directory)]
