"""What every report writer renders: the run's settings, timing, per-requirement results and verdict.

Built once at the end of the session; every string in it is already redacted, so a writer only has to
escape for its own format.
"""

from __future__ import annotations

import platform
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any

from suite.catalogue import CatalogueError
from suite.identity import identity
from suite.outcomes import OUTCOME_ORDER, Outcome, RequirementResult, TestResult, Verdict
from suite.resources import SpecsNotFound

__all__ = ["RunReport", "documents", "versions"]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions a bug report about the suite needs."""
    return {
        "conform42": _version("conform42"),
        "python": platform.python_version(),
        "pytest": _version("pytest"),
        "httpx": _version("httpx"),
        "schemathesis": _version("schemathesis"),
        "hypothesis": _version("hypothesis"),
    }


def documents() -> dict[str, Any]:
    """The catalogue and specs digests the run judged against (``suite.identity``); empty if unreadable."""
    try:
        found = identity()
    except (CatalogueError, SpecsNotFound, OSError):
        return {}
    return {"catalogue": found["catalogue"], "specs_sha256": found["specs_sha256"]}


@dataclass
class RunReport:
    """One finished run."""

    target: str
    profile: str
    level: str
    config: dict[str, Any]
    started: datetime
    finished: datetime
    requirements: list[RequirementResult]
    tests: list[TestResult]
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=versions)
    documents: dict[str, Any] = field(default_factory=documents)

    @property
    def duration_s(self) -> float:
        return (self.finished - self.started).total_seconds()

    def matrix(self) -> dict[str, Counter[Outcome]]:
        """Area -> requirement outcome counts, in catalogue order of first appearance."""
        rows: dict[str, Counter[Outcome]] = {}
        for result in self.requirements:
            rows.setdefault(result.requirement.area, Counter())[result.outcome] += 1
        return rows

    def matrix_by_level(self) -> dict[str, dict[str, Counter[Outcome]]]:
        """Area -> level -> requirement outcome counts; areas in catalogue order of first appearance."""
        rows: dict[str, dict[str, Counter[Outcome]]] = {}
        for result in self.requirements:
            r = result.requirement
            rows.setdefault(r.area, {}).setdefault(r.level, Counter())[result.outcome] += 1
        return rows

    def failures(self) -> list[tuple[RequirementResult, TestResult]]:
        """Every (requirement, test) pair whose test failed or errored, requirement order."""
        return [
            (r, t) for r in self.requirements for t in r.tests if t.outcome in (Outcome.FAIL, Outcome.ERROR)
        ]

    def unlinked_tests(self) -> list[TestResult]:
        """Tests that count for no selected requirement (other profile, untagged, unknown IDs)."""
        linked = {id(t) for r in self.requirements for t in r.tests}
        return [t for t in self.tests if id(t) not in linked]

    def to_dict(self) -> dict[str, Any]:
        return {
            "conform42_report": 1,
            "versions": self.versions,
            "documents": self.documents,
            "target": self.target,
            "profile": self.profile,
            "level": self.level,
            "config": self.config,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "duration_s": round(self.duration_s, 3),
            **self.verdict.to_dict(),
            "summary": {o.value: sum(1 for r in self.requirements if r.outcome is o) for o in OUTCOME_ORDER},
            "requirements": [r.to_dict() for r in self.requirements],
            "other_tests": [t.to_dict() for t in self.unlinked_tests()],
            "notes": self.notes,
        }
