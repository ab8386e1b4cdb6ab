"""The conform42 pytest plugin (entry point ``pytest11: conform42``).

It adds the target options, the ``requirement`` marker and the ``target`` / ``api`` fixtures. It is
inert for test runs that do not collect ``suite.conformance`` tests: the options have defaults and the
fixtures are only built when a test asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from suite.http import Api
from suite.markers import MARKER
from suite.target import PROFILE_NAMES, TIERS, Target

__all__ = ["pytest_addoption", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conform42", "conform42 conformance suite")
    group.addoption("--target", default=None, help="base URL of the server under test (env CONFORM42_TARGET)")
    group.addoption("--token-url", default=None,
                    help="base URL of the token exchange, if not the target (env CONFORM42_TOKEN_URL)")
    group.addoption("--profile", choices=PROFILE_NAMES, default=None,
                    help="which API the target implements: 42ai (default) or fortytwo")
    for tier in TIERS:
        group.addoption(f"--key-{tier}", default=None,
                        help=f"API key of the {tier} tier (env CONFORM42_KEY_{tier.upper()}); "
                        "without it the tier's tests are Disabled")
    group.addoption("--request-timeout", type=float, default=None,
                    help="seconds before a request without an answer fails (default 30)")
    group.addoption("--chat-model", default=None, help="chat model ID (default: 42-general, or discovered)")
    group.addoption("--embed-model", default=None,
                    help="embedding model ID (default: 42-embed, or discovered)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(*ids): the conform42 requirement IDs this test checks"
    )


def _option(config: pytest.Config, name: str, env: str) -> str | None:
    value = config.getoption(name)
    return str(value) if value is not None else os.environ.get(env) or None


def target_from_config(config: pytest.Config) -> Target:
    """Build the Target from command-line options, then environment variables."""
    url = _option(config, "--target", "CONFORM42_TARGET")
    if url is None:
        raise pytest.UsageError("conform42: no target; pass --target URL or set CONFORM42_TARGET")
    profile = _option(config, "--profile", "CONFORM42_PROFILE") or "42ai"
    if profile not in PROFILE_NAMES:
        raise pytest.UsageError(f"conform42: unknown profile {profile!r} (choose {', '.join(PROFILE_NAMES)})")
    keys: dict[str, str] = {}
    for tier in TIERS:
        if key := _option(config, f"--key-{tier}", f"CONFORM42_KEY_{tier.upper()}"):
            keys[tier] = key
    timeout = _option(config, "--request-timeout", "CONFORM42_TIMEOUT")
    return Target(
        base_url=url,
        profile="fortytwo" if profile == "fortytwo" else "42ai",
        token_url=_option(config, "--token-url", "CONFORM42_TOKEN_URL"),
        keys=keys,
        timeout=float(timeout) if timeout else 30.0,
        chat_model=_option(config, "--chat-model", "CONFORM42_CHAT_MODEL") or "42-general",
        embed_model=_option(config, "--embed-model", "CONFORM42_EMBED_MODEL") or "42-embed",
    )


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The server under test."""
    return target_from_config(pytestconfig)


@pytest.fixture(scope="session")
def api(target: Target) -> Iterator[Api]:
    """The suite's client for the target (timeouts, no retries, task tokens managed)."""
    with Api(target) as client:
        yield client
