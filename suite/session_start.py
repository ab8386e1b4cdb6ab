"""The run's start: the bundled reference server when there is no target, then the preflight.

A usage error found here (a bad setting, an unreachable target, a refused key) stops the run before
any test; ``pytest_runtestloop`` then runs none.
"""

from __future__ import annotations

import pytest

from suite.config import Settings
from suite.fixtures import base_target
from suite.preflight import run_preflight
from suite.reference import DEMO_KEYS, ReferenceServer, ReferenceServerError
from suite.run_state import STATE, RunState, require_settings, say, usage_error

__all__ = ["pytest_collection_finish", "pytest_runtestloop", "pytest_unconfigure"]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the bundled reference server if there is no target, then check the target (preflight)."""
    config = session.config
    state = config.stash[STATE]
    if state.usage_error or not state.active or not session.items or config.option.collectonly:
        return
    settings = require_settings(config)
    if settings.target is not None:
        state.keys = dict(settings.keys)
    else:
        state.keys = dict(DEMO_KEYS)
        server = ReferenceServer(
            settings.reference_engine,
            progress=lambda message: say(config, message),
            # Engines at normal priority: the server's default niceness 10 tunes gateway latency, but on
            # a shared machine it lets any other busy process starve vLLM (measured: 1 token/s with one
            # core taken by `yes`), and the verdict must not depend on what else the machine runs.
            extra_args=("--flavour", settings.profile, "--engine-nice", "0"),
        )
        try:
            state.reference = server.__enter__()
        except ReferenceServerError as exc:
            state.reference_error = f"the bundled reference server did not start: {exc}"
            say(config, state.reference_error)
            # Every test would error the same way; one is enough to show it.
            session.shouldstop = "conform42: the bundled reference server did not start"
            return
        state.notes.append(
            f"target: the bundled reference server (--engine {settings.reference_engine}), demo keys"
        )
    # Only tests that talk to the target need it checked (the plugin's own tests run tagged tests that
    # never do, against a port nobody listens on).
    if any("target" in getattr(item, "fixturenames", ()) for item in session.items):
        _preflight(config, state, settings)
        if state.usage_error:
            return
    _announce(config, state)


def _preflight(config: pytest.Config, state: RunState, settings: Settings) -> None:
    """Check the target and keys (one request each) and discover models; a problem is a usage error."""
    target = base_target(config)
    given = settings.chat_model is not None and settings.embed_model is not None
    # The bundled reference server serves the documented IDs under either flavour: nothing to discover.
    discover = target.profile == "fortytwo" and settings.target is not None and not given
    result = run_preflight(
        target, discover=discover, chat_model=settings.chat_model, embed_model=settings.embed_model
    )
    if not result.ok:
        usage_error(config, "; ".join(result.problems))
        return
    state.target = result.target
    say(config, f"preflight: {result.summary}")
    for note in result.notes:
        say(config, f"preflight: {note}")
    state.notes.extend(result.notes)
    if discover:  # the report says which models a discovered target was tested with
        found = result.target
        state.notes.append(f"models: chat {found.chat_model}, embeddings {found.embed_model or 'none'}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Run no test at all after a usage error (pytest's own loop would run them)."""
    state = session.config.stash[STATE]
    return True if state.usage_error else None


def _announce(config: pytest.Config, state: RunState) -> None:
    """One line before the tests start, so a quiet ``conform42 run`` in CI shows it is working."""
    if state.compact and state.settings is not None:
        s = state.settings
        say(
            config,
            f"running {len(state.item_ids)} tests for {len(state.selected)} requirements "
            f"({s.profile} profile, {s.level.upper()} and stronger) against "
            f"{s.target or 'the reference server'}",
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.reference is not None:
        state.reference.close()
        state.reference = None
