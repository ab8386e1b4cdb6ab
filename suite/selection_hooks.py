"""Which collected tests run: the selection by level, requirement expression and profile.

A test carries requirement IDs (``@requirement``); it runs when one of them is in scope, and a test of
another profile's requirements is Disabled rather than deselected, so the report shows why.
"""

from __future__ import annotations

import pytest

from suite.catalogue import Requirement, load_catalogue
from suite.checks import DISABLED_PREFIX
from suite.markers import MARKER
from suite.run_state import STATE, RunState, try_settings, usage_error
from suite.selection import RequirementFilter, SelectionError, level_admits, parse_filter

__all__ = ["CollectErrors", "pytest_collection_modifyitems"]


def _requirement_ids(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers(MARKER):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


def _profile_disabled(known: list[Requirement], profile: str) -> str | None:
    if not known or any(profile in r.profiles for r in known):
        return None
    others = sorted({r.profile for r in known})
    return f"profile {profile}: requirement is {'/'.join(others)}-only"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash[STATE]
    if not state.compact and not any(item.get_closest_marker(MARKER) for item in items):
        return  # not a conformance run: leave the project's own tests alone
    state.active = True
    settings = try_settings(config)
    if settings is None:
        return  # reported; pytest_runtestloop runs nothing
    try:
        wanted: RequirementFilter = parse_filter(settings.requirements)
    except SelectionError as exc:
        usage_error(config, str(exc))
        return
    catalogue = load_catalogue()

    def in_scope(r: Requirement) -> bool:
        return level_admits(settings.level, r.level) and wanted(r)

    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    unknown: set[str] = set()
    for item in items:
        ids = _requirement_ids(item)
        known = [catalogue[i] for i in ids if i in catalogue]
        unknown.update(i for i in ids if i not in catalogue)
        # An untagged test (e.g. a property test) runs unless the user narrowed the run by requirement.
        keep = any(in_scope(r) for r in known) if known else wanted.expression is None
        if not keep:
            deselected.append(item)
            continue
        reason = _profile_disabled(known, settings.profile)
        if reason:
            item.add_marker(pytest.mark.skip(reason=DISABLED_PREFIX + reason))
        kept.append(item)
        state.item_ids[item.nodeid] = ids
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    if unknown:
        state.notes.append(f"tests name requirement IDs not in the catalogue: {', '.join(sorted(unknown))}")
    state.selected = [r for r in catalogue.select(profile=settings.profile) if in_scope(r)]


class CollectErrors:
    """Remembers collection errors (``conform42 run`` turns pytest's tracebacks off, so we show them).

    A plugin object because ``pytest_collectreport`` gets no config to find the run's state with.
    """

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.state.collect_errors.append(f"{report.nodeid or '(session)'}: {report.longreprtext.strip()}")
