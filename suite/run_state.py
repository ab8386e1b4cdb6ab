"""What the conform42 plugin knows about one conformance run, kept in the pytest config's stash.

Also the plugin's ways to speak (``say``, ``announce``) and to end a run as a usage error, and the run's
settings as the options (``suite.options``), environment and ``conform42.toml`` give them.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime

import pytest

from suite.catalogue import CatalogueError, Requirement
from suite.config import ConfigError, Settings, resolve_settings
from suite.liveness import Liveness
from suite.option_builders import pytest_values
from suite.outcomes import TestResult
from suite.progress import Progress
from suite.reference import ReferenceServer
from suite.report import RunReport
from suite.target import Target

__all__ = ["STATE", "RunState", "announce", "require_settings", "say", "try_settings", "usage_error"]


@dataclasses.dataclass
class RunState:
    """What the plugin knows about one conformance run."""

    active: bool = False
    compact: bool = False
    settings: Settings | None = None
    selected: list[Requirement] = dataclasses.field(default_factory=list)
    item_ids: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    tests: dict[str, TestResult] = dataclasses.field(default_factory=dict)
    keys: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    reference: ReferenceServer | None = None
    reference_error: str | None = None
    started: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    done: int = 0
    report: RunReport | None = None
    collect_errors: list[str] = dataclasses.field(default_factory=list)
    #: The client's last request when each running test's setup ended: a failure shows a curl line
    #: only for a request the test itself sent.
    request_before: dict[str, object] = dataclasses.field(default_factory=dict)
    written: list[str] = dataclasses.field(default_factory=list)
    #: The target the preflight checked (models discovered); the ``target`` fixture hands it out.
    target: Target | None = None
    #: What the user must fix (a bad setting, an unreachable target, a refused key): no test runs, the run
    #: ends with exit 2 and this one line.
    usage_error: str | None = None
    #: Which endpoints stopped answering during the run (``suite.liveness``), shared by its clients.
    liveness: Liveness = dataclasses.field(default_factory=Liveness)
    #: ``conform42 run -q``: no progress line.
    quiet: bool = False
    #: The progress line while the tests run (``suite.progress``), from the first test on.
    progress: Progress | None = None


STATE = pytest.StashKey[RunState]()


def usage_error(config: pytest.Config, message: str) -> None:
    """End the run as a usage error: one line on stderr now, no test runs, exit 2 (the first one wins)."""
    state = config.stash[STATE]
    if state.usage_error is None:
        state.usage_error = message
        print(f"conform42: {message}", file=sys.stderr, flush=True)


def try_settings(config: pytest.Config) -> Settings | None:
    """The run's settings, or None after reporting the bad one as a usage error."""
    state = config.stash[STATE]
    if state.settings is None and state.usage_error is None:
        try:
            state.settings = resolve_settings(pytest_values(config.getoption))
        except (ConfigError, CatalogueError) as exc:
            usage_error(config, str(exc))
    return state.settings


def require_settings(config: pytest.Config) -> Settings:
    """The run's settings; a bad one ends pytest with a usage error."""
    settings = try_settings(config)
    if settings is None:
        raise pytest.UsageError(f"conform42: {config.stash[STATE].usage_error}")
    return settings


def say(config: pytest.Config, message: str) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.progress is not None:
        state.progress.clear()  # the live line gives way; it is drawn again within a second
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"conform42: {message}")
    else:
        print(f"conform42: {message}", file=sys.stderr, flush=True)


def announce(config: pytest.Config, message: str) -> None:
    """Print a line during the tests (past pytest's output capture) and keep it as a report note."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            say(config, message)
    else:
        say(config, message)
    state = config.stash.get(STATE, None)
    if state is not None:
        state.notes.append(message)
