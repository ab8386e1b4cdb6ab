"""The session fixtures ``target``, ``api`` and ``features``, and the Target the settings describe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from suite.checks import TargetUnreachable
from suite.features import Features, discover_models
from suite.http import Api
from suite.reference import DEMO_KEYS
from suite.run_state import STATE, require_settings
from suite.target import Target

__all__ = ["api", "base_target", "features", "target", "target_from_config"]


def base_target(config: pytest.Config) -> Target:
    """The Target the settings name (or the bundled reference server), models as given or documented."""
    state = config.stash[STATE]
    settings = require_settings(config)
    if state.reference_error:
        raise TargetUnreachable(state.reference_error)
    if settings.target is not None:
        url, keys = settings.target, dict(settings.keys)
    elif state.reference is not None:
        url, keys = state.reference.base_url, dict(DEMO_KEYS)
    else:
        raise pytest.UsageError("conform42: no target; pass --target URL or set CONFORM42_TARGET")
    state.keys = keys
    return Target(
        base_url=url,
        profile="fortytwo" if settings.profile == "fortytwo" else "42ai",
        token_url=settings.token_url,
        keys=keys,
        timeout=settings.request_timeout,
        chat_model=settings.chat_model or "42-general",
        embed_model=settings.embed_model or "42-embed",
        image_url=settings.image_url,
    )


def _build_target(config: pytest.Config) -> Target:
    state = config.stash[STATE]
    if state.target is not None:
        return state.target  # checked by the preflight, models discovered
    settings = require_settings(config)
    target = base_target(config)
    # No preflight ran (e.g. a run whose tests do not use the target until a fixture asks for it here).
    discover = target.profile == "fortytwo" and settings.target is not None
    if discover and (settings.chat_model is None or settings.embed_model is None):
        with Api(target) as client:
            target, note = discover_models(
                client, target, chat=settings.chat_model, embed=settings.embed_model
            )
        if note:
            state.notes.append(note)
        state.notes.append(f"models: chat {target.chat_model}, embeddings {target.embed_model or 'none'}")
    state.target = target
    return target


def target_from_config(config: pytest.Config) -> Target:
    """The Target the options, environment and ``conform42.toml`` describe."""
    return _build_target(config)


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The server under test."""
    return _build_target(pytestconfig)


@pytest.fixture(scope="session")
def api(target: Target, pytestconfig: pytest.Config) -> Iterator[Api]:
    """The suite's client for the target (timeouts, no retries, task tokens managed); it keeps the run's
    count of endpoints that stopped answering (``suite.liveness``)."""
    with Api(target, liveness=pytestconfig.stash[STATE].liveness) as client:
        yield client


@pytest.fixture(scope="session")
def features(target: Target, api: Api) -> Features:
    """Optional features of the target: ``features.require("batch")``, ``features.require_embeddings()``."""
    return Features(target, api)
