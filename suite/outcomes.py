"""Outcomes of tests and requirements, and the verdict of a run.

Five outcomes (as in the OCI distribution-spec conformance suite): *Pass*, *Fail* (the target does not
conform), *Error* (the suite could not judge: unreachable target, a bug in a test), *Skip* and
*Disabled* (a profile, tier key or optional feature is off; never a failure). A requirement takes the
worst outcome of its tests in the order Fail > Error > Pass > Skip > Disabled: one proven deviation
outweighs everything, an Error outweighs a Pass because the requirement was not fully judged, and a
Pass outweighs a Skip because something was actually checked. A requirement with no selected test is
*Not tested*.

The verdict looks at the selected MUST requirements only (SHOULD and MAY are reported, never gate),
unless the run asks for a stricter gate (``--gate should`` or ``may``: a failed requirement of that level
or stronger also makes the run NON-CONFORMANT; the planted-fault proof uses it):

* NON-CONFORMANT (exit 1): a MUST requirement (or one within the gate) failed.
* INCONCLUSIVE (exit 2): no MUST failed, but some selected requirement had an Error (an Error is never
  counted as a Fail), a MUST the suite could have judged was skipped (the target could not be brought
  to show the behaviour, e.g. the tier limit), or no MUST requirement passed at all (nothing was judged).
  A skipped MUST does not block the verdict when the catalogue marks it ``unforceable`` (no client can
  bring the condition about, e.g. a capacity 503 needs a full server) or the user accepted its skip
  (``--accept-skip ID``); the verdict's reason lists those.
* CONFORMANT (exit 0): every MUST requirement that ran passed; MUSTs that were Disabled (missing tier key,
  missing feature), skipped or not tested are listed beside the verdict, never hidden.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from suite.catalogue import LEVELS, Requirement

__all__ = [
    "EXIT_CONFORMANT",
    "EXIT_NON_CONFORMANT",
    "EXIT_SUITE_ERROR",
    "FailureDetail",
    "Outcome",
    "RequirementResult",
    "TestResult",
    "Verdict",
    "aggregate",
    "decide_verdict",
    "worst",
]

EXIT_CONFORMANT = 0
EXIT_NON_CONFORMANT = 1
EXIT_SUITE_ERROR = 2


class Outcome(enum.Enum):
    """The outcome of a test or a requirement; ``severity`` orders them (higher is worse)."""

    PASS = "Pass"
    FAIL = "Fail"
    ERROR = "Error"
    SKIP = "Skip"
    DISABLED = "Disabled"
    NOT_TESTED = "Not tested"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


# Not tested ranks lowest: it only appears when there is no test at all.
_SEVERITY = {
    Outcome.NOT_TESTED: 0,
    Outcome.DISABLED: 1,
    Outcome.SKIP: 2,
    Outcome.PASS: 3,
    Outcome.ERROR: 4,
    Outcome.FAIL: 5,
}

#: Column order of matrices and counts in every report.
OUTCOME_ORDER: tuple[Outcome, ...] = (
    Outcome.PASS,
    Outcome.FAIL,
    Outcome.ERROR,
    Outcome.SKIP,
    Outcome.DISABLED,
    Outcome.NOT_TESTED,
)


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The worst of ``outcomes``; Not tested for none."""
    return max(outcomes, key=lambda o: o.severity, default=Outcome.NOT_TESTED)


@dataclass
class FailureDetail:
    """What a report shows for a Fail or an Error. Every string is already redacted."""

    message: str
    expected: str | None = None
    received: str | None = None
    response: str | None = None
    curl: str | None = None
    phase: str = "call"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class TestResult:
    """One test (pytest node) and the requirements it checks."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    requirement_ids: tuple[str, ...]
    #: Not tested until a phase reports; the worst phase wins (see ``record``).
    outcome: Outcome = Outcome.NOT_TESTED
    duration_s: float = 0.0
    reason: str | None = None
    failure: FailureDetail | None = None

    def record(
        self, outcome: Outcome, *, reason: str | None = None, failure: FailureDetail | None = None
    ) -> None:
        """Fold one phase's outcome in: the worst phase wins, and its details with it."""
        if outcome.severity > self.outcome.severity or (outcome is self.outcome and self.reason is None):
            self.outcome = outcome
            self.reason = reason
            self.failure = failure

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nodeid": self.nodeid,
            "requirements": list(self.requirement_ids),
            "outcome": self.outcome.value,
            "duration_s": round(self.duration_s, 3),
        }
        if self.reason:
            data["reason"] = self.reason
        if self.failure is not None:
            data["failure"] = self.failure.to_dict()
        return data


@dataclass
class RequirementResult:
    """A catalogue entry with the tests that checked it."""

    requirement: Requirement
    tests: list[TestResult] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        return worst(t.outcome for t in self.tests)

    def to_dict(self) -> dict[str, Any]:
        r = self.requirement
        return {
            "id": r.id,
            "level": r.level,
            "profile": r.profile,
            "area": r.area,
            "statement": r.statement,
            "outcome": self.outcome.value,
            "tests": [t.to_dict() for t in self.tests],
        }


def aggregate(requirements: Sequence[Requirement], tests: Iterable[TestResult]) -> list[RequirementResult]:
    """One result per selected requirement, in catalogue order; a test counts for each of its IDs."""
    results = {r.id: RequirementResult(r) for r in requirements}
    for test in tests:
        for requirement_id in test.requirement_ids:
            if requirement_id in results:
                results[requirement_id].tests.append(test)
    return list(results.values())


@dataclass(frozen=True)
class Verdict:
    """The run's verdict, its exit code and the counts that qualify it."""

    label: str
    exit_code: int
    must_counts: Mapping[Outcome, int]
    reason: str

    @property
    def line(self) -> str:
        """E.g. ``CONFORMANT (42 MUST passed; 3 MUST disabled)``."""
        parts = [
            f"{self.must_counts.get(o, 0)} MUST {o.value.lower()}"
            for o in OUTCOME_ORDER
            if self.must_counts.get(o, 0)
        ]
        detail = "; ".join(parts) if parts else "no MUST requirement selected"
        return f"{self.label} ({detail})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.label,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "must": {o.value: self.must_counts.get(o, 0) for o in OUTCOME_ORDER},
        }


def decide_verdict(
    results: Sequence[RequirementResult],
    *,
    session_error: str | None = None,
    gate: str = "MUST",
    accepted_skips: Collection[str] = (),
) -> Verdict:
    """Apply the rules of the module docstring; ``session_error`` (collection, start-up) forces exit 2.

    ``gate`` is the weakest level whose failures make the run NON-CONFORMANT (default MUST).
    """
    gate = gate.upper()
    if gate not in LEVELS:
        raise ValueError(f"gate must be one of {', '.join(LEVELS)}, not {gate!r}")
    gating = LEVELS[: LEVELS.index(gate) + 1]
    must = [r.outcome for r in results if r.requirement.level == "MUST"]
    counts = {o: must.count(o) for o in OUTCOME_ORDER if must.count(o)}
    errored = [r.requirement.id for r in results if r.outcome is Outcome.ERROR]
    failed = [
        r.requirement.id for r in results if r.outcome is Outcome.FAIL and r.requirement.level in gating
    ]
    if failed:
        return Verdict(
            "NON-CONFORMANT",
            EXIT_NON_CONFORMANT,
            counts,
            f"{'/'.join(gating)} requirements failed: {', '.join(failed)}",
        )
    if session_error:
        return Verdict("INCONCLUSIVE", EXIT_SUITE_ERROR, counts, session_error)
    if errored:
        return Verdict(
            "INCONCLUSIVE",
            EXIT_SUITE_ERROR,
            counts,
            f"the suite could not judge (Error): {', '.join(errored)}",
        )
    skipped = [r.requirement for r in results if r.requirement.level == "MUST" and r.outcome is Outcome.SKIP]
    unjudged = [r.id for r in skipped if r.unforceable is None and r.id not in accepted_skips]
    if unjudged:
        return Verdict(
            "INCONCLUSIVE",
            EXIT_SUITE_ERROR,
            counts,
            f"MUST requirements the suite could not bring about were skipped: "
            f"{', '.join(unjudged)} (see each one's reason; --accept-skip ID accepts a skip)",
        )
    excused = []
    if forced := [r.id for r in skipped if r.unforceable is not None]:
        excused.append(f"skipped, no client can force them: {', '.join(forced)}")
    if accepted := [r.id for r in skipped if r.unforceable is None]:
        excused.append(f"skips accepted (--accept-skip): {', '.join(accepted)}")
    if all(r.outcome is Outcome.NOT_TESTED for r in results):
        return Verdict(
            "INCONCLUSIVE",
            EXIT_SUITE_ERROR,
            counts,
            "no test ran for the selected requirements (--requirements, --level, --profile)",
        )
    if not counts.get(Outcome.PASS):
        return Verdict("INCONCLUSIVE", EXIT_SUITE_ERROR, counts, "no MUST requirement was judged")
    return Verdict(
        "CONFORMANT", EXIT_CONFORMANT, counts, "; ".join(["every MUST requirement that ran passed", *excused])
    )
