"""What changed between two runs: compares two ``results.json`` files requirement by requirement.

A requirement lands in one of four groups when its outcome moved into it: newly failing (now Fail),
newly erroring (now Error), newly passing (now Pass) and newly skipped (now Skip, Disabled or Not tested,
or gone from the run). Moves inside the skipped family (Skip -> Disabled) are no news. A requirement
that is new to the run counts as moved from ``absent``. Only a MUST that newly fails makes the
comparison a regression (exit 1), as only a failed MUST makes a run NON-CONFORMANT.

Pure: reads two parsed files (``load_results`` reads one from disk) and returns plain data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.catalogue import LEVELS
from suite.outcomes import Outcome

__all__ = [
    "ABSENT",
    "GROUPS",
    "Change",
    "ResultsDiff",
    "ResultsFileError",
    "diff_results",
    "load_results",
    "render_diff",
]

#: The outcome shown for a requirement that one of the two runs did not hold.
ABSENT = "absent"

_SKIPPED = {Outcome.SKIP.value, Outcome.DISABLED.value, Outcome.NOT_TESTED.value, ABSENT}

#: (key, heading) of each group, in the order they are printed: the news that needs action first.
GROUPS: tuple[tuple[str, str], ...] = (
    ("newly_failing", "Newly failing"),
    ("newly_erroring", "Newly erroring"),
    ("newly_skipped", "Newly skipped"),
    ("newly_passing", "Newly passing"),
)

_REQUIRED_FIELDS = ("id", "level", "area", "statement", "outcome")


class ResultsFileError(Exception):
    """A file is missing, unreadable or not a conform42 ``results.json``; the message is one line."""


@dataclass(frozen=True)
class Change:
    """One requirement whose outcome moved between the two runs."""

    id: str
    level: str
    area: str
    statement: str
    old: str
    new: str

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "level": self.level,
            "area": self.area,
            "statement": self.statement,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True)
class ResultsDiff:
    """The four groups of changes (each in level order, then the newer run's order) and both verdicts."""

    old_verdict: str
    new_verdict: str
    newly_failing: tuple[Change, ...]
    newly_erroring: tuple[Change, ...]
    newly_skipped: tuple[Change, ...]
    newly_passing: tuple[Change, ...]
    notes: tuple[str, ...] = ()

    def group(self, key: str) -> tuple[Change, ...]:
        changes: tuple[Change, ...] = getattr(self, key)
        return changes

    @property
    def must_regressed(self) -> bool:
        """A MUST requirement fails now that did not before."""
        return any(c.level == "MUST" for c in self.newly_failing)

    @property
    def exit_code(self) -> int:
        return 1 if self.must_regressed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_verdict": self.old_verdict,
            "new_verdict": self.new_verdict,
            **{key: [c.to_dict() for c in self.group(key)] for key, _ in GROUPS},
            "must_regressed": self.must_regressed,
            "exit_code": self.exit_code,
            "notes": list(self.notes),
        }


def _check_results(data: Any, name: str) -> dict[str, Any]:
    if not isinstance(data, dict) or "conform42_report" not in data:
        raise ResultsFileError(f"{name}: not a conform42 results.json (no conform42_report member)")
    requirements = data.get("requirements")
    if not isinstance(requirements, list):
        raise ResultsFileError(f"{name}: not a conform42 results.json (no requirements list)")
    for index, entry in enumerate(requirements):
        missing = [f for f in _REQUIRED_FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise ResultsFileError(f"{name}: requirement #{index + 1} lacks {', '.join(missing)}")
    return data


def load_results(path: Path) -> dict[str, Any]:
    """The parsed ``results.json`` at ``path``; ``ResultsFileError`` says in one line what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ResultsFileError(f"{path}: is a directory, not a results.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return _check_results(data, str(path))


def _group_of(old: str, new: str) -> str | None:
    if old == new:
        return None
    if new == Outcome.FAIL.value:
        return "newly_failing"
    if new == Outcome.ERROR.value:
        return "newly_erroring"
    if new == Outcome.PASS.value:
        return "newly_passing"
    if new in _SKIPPED and old not in _SKIPPED:
        return "newly_skipped"
    return None


def _level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def _notes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes the two runs less comparable than they look (another target, profile or level)."""
    notes = []
    for key in ("target", "profile", "level"):
        if old.get(key) != new.get(key):
            notes.append(f"{key} differs: {old.get(key)} -> {new.get(key)}")
    # Reports written before the digests were recorded have none: nothing to compare then.
    old_specs = (old.get("documents") or {}).get("specs_sha256")
    new_specs = (new.get("documents") or {}).get("specs_sha256")
    if old_specs and new_specs and old_specs != new_specs:
        notes.append(f"judged against other documents: specs sha256 {old_specs} -> {new_specs}")
    return tuple(notes)


def diff_results(old: Mapping[str, Any], new: Mapping[str, Any]) -> ResultsDiff:
    """Compare two parsed ``results.json`` documents (checked by ``load_results``)."""
    old_by_id = {r["id"]: r for r in old["requirements"]}
    new_by_id = {r["id"]: r for r in new["requirements"]}
    # The newer run's wording, level and order win; requirements gone from it follow in the old order.
    ordered = [*new_by_id.values(), *(r for i, r in old_by_id.items() if i not in new_by_id)]
    groups: dict[str, list[Change]] = {key: [] for key, _ in GROUPS}
    for entry in ordered:
        before = old_by_id.get(entry["id"], {}).get("outcome", ABSENT)
        after = new_by_id.get(entry["id"], {}).get("outcome", ABSENT)
        key = _group_of(before, after)
        if key is not None:
            groups[key].append(
                Change(entry["id"], entry["level"], entry["area"], entry["statement"], before, after)
            )
    for changes in groups.values():
        changes.sort(key=lambda c: _level_rank(c.level))  # stable: run order within a level
    return ResultsDiff(
        old_verdict=str(old.get("verdict", "?")),
        new_verdict=str(new.get("verdict", "?")),
        newly_failing=tuple(groups["newly_failing"]),
        newly_erroring=tuple(groups["newly_erroring"]),
        newly_skipped=tuple(groups["newly_skipped"]),
        newly_passing=tuple(groups["newly_passing"]),
        notes=_notes(old, new),
    )


def _levels_of(changes: Sequence[Change]) -> list[str]:
    return sorted({c.level for c in changes}, key=_level_rank)


def render_diff(diff: ResultsDiff, old_name: str = "OLD", new_name: str = "NEW") -> str:
    """The comparison as plain text: verdicts, then each non-empty group by level, then the outcome."""
    lines = [
        f"conform42 diff: {old_name} -> {new_name}",
        f"verdict: {diff.old_verdict} -> {diff.new_verdict}",
    ]
    lines.extend(f"note: {n}" for n in diff.notes)
    for key, heading in GROUPS:
        changes = diff.group(key)
        if not changes:
            continue
        lines.extend(["", f"{heading} ({len(changes)})"])
        for level in _levels_of(changes):
            lines.append(f"  {level}")
            for c in (c for c in changes if c.level == level):
                lines.append(f"    {c.id} [{c.level}, {c.area}] {c.old} -> {c.new}: {c.statement}")
    if not any(diff.group(key) for key, _ in GROUPS):
        lines.extend(["", "no requirement changed outcome"])
    lines.append("")
    if diff.must_regressed:
        ids = ", ".join(c.id for c in diff.newly_failing if c.level == "MUST")
        lines.append(f"REGRESSION: MUST requirements newly failing: {ids}")
    else:
        lines.append("no MUST requirement newly failing")
    return "\n".join(lines) + "\n"
