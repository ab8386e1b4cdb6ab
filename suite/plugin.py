"""The conform42 pytest plugin (entry point ``pytest11: conform42``).

It adds the suite's options (``suite.options``), the ``requirement`` marker, the session fixtures
``target``, ``api`` and ``features`` (``suite.fixtures``), and, for a run that collects ``@requirement``
tests, the selection (``--level``, ``--requirements``, profile; ``suite.selection_hooks``), the bundled
reference server when no target is named and the preflight (``suite.session_start``), the per-test
outcomes (``suite.outcome_hooks``), the reports and the exit code (0 conformant, 1 non-conformant, 2
suite error or inconclusive; ``suite.verdict_hooks``). What the user must fix ends the run as a usage
error (exit 2, one line on stderr) without running a test. It is inert for runs without
``@requirement`` tests (the project's own ``tests/``): the options have defaults, no hook changes
anything and the fixtures are built only when asked for.

pytest registers this module, so the hooks and fixtures of those modules are imported here.
"""

from __future__ import annotations

import pytest

from suite.fixtures import api, features, target, target_from_config
from suite.markers import MARKER
from suite.option_builders import add_pytest_options
from suite.options import COMPACT, QUIET
from suite.outcome_hooks import pytest_report_teststatus, pytest_runtest_makereport, pytest_runtest_protocol
from suite.run_state import STATE, RunState, announce
from suite.selection_hooks import CollectErrors, pytest_collection_modifyitems
from suite.session_start import pytest_collection_finish, pytest_runtestloop, pytest_unconfigure
from suite.verdict_hooks import pytest_sessionfinish, pytest_terminal_summary

__all__ = [
    "announce",
    "api",
    "features",
    "pytest_addoption",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_teststatus",
    "pytest_runtest_makereport",
    "pytest_runtest_protocol",
    "pytest_runtestloop",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "target",
    "target_from_config",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_pytest_options(parser.getgroup("conform42", "conform42 conformance suite"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*ids): the conform42 requirement IDs this test checks")
    state = RunState(
        compact=bool(config.getoption(COMPACT.pytest_spellings[0])),
        quiet=bool(config.getoption(QUIET.pytest_spellings[0])),
    )
    config.stash[STATE] = state
    config.pluginmanager.register(CollectErrors(state), "conform42-collect-errors")
