"""The teardown hook of tests/conftest.py stops the shared vLLM reference server as soon as the next
test does not use it, and a later test that asks again gets a new one.

Run in an inner pytest session (pytester) over a stand-in for the shared server that records its
starts and stops: the hook is what is under test, not vLLM.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
import tests.conftest as outer
from tests.conftest import pytest_runtest_teardown  # noqa: F401 - the hook under test

EVENTS = []

class StandIn:
    def __init__(self):
        self.running = None
        self.starts = 0

    def server(self):
        if self.running is None:
            self.starts += 1
            self.running = f"server-{self.starts}"
            EVENTS.append("start")
        return self.running

    def stop(self):
        if self.running is not None:
            self.running = None
            EVENTS.append("stop")

@pytest.fixture(scope="session")
def shared_vllm_reference():
    shared = StandIn()
    outer._shared_vllm.append(shared)
    yield shared
    outer._shared_vllm.remove(shared)
    shared.stop()
"""


def test_the_shared_server_stops_between_its_users_and_starts_again(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_a="""
        from conftest import EVENTS

        def test_a1(shared_vllm_reference):
            assert shared_vllm_reference.server() == "server-1"

        def test_a2(shared_vllm_reference):
            assert shared_vllm_reference.server() == "server-1"  # kept between two users
            assert EVENTS == ["start"]
        """,
        test_b="""
        from conftest import EVENTS

        def test_b():
            assert EVENTS == ["start", "stop"]  # stopped before a test that does not use it
        """,
        test_c="""
        from conftest import EVENTS

        def test_c(shared_vllm_reference):
            assert shared_vllm_reference.server() == "server-2"
            assert EVENTS == ["start", "stop", "start"]
        """,
        test_d="""
        from conftest import EVENTS

        def test_d():
            assert EVENTS == ["start", "stop", "start", "stop"]
        """,
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:conform42")
    result.assert_outcomes(passed=5)
