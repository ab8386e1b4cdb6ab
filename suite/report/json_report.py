"""``results.json``: the machine-readable report (see ``RunReport.to_dict`` for the shape)."""

from __future__ import annotations

import json
from pathlib import Path

from suite.report.model import RunReport

__all__ = ["FILE_NAME", "write_json"]

FILE_NAME = "results.json"


def write_json(report: RunReport, directory: Path) -> Path:
    path = directory / FILE_NAME
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
