"""The batch drain after a property run is bounded by the test's own time (``drain_within``): on a loaded
machine it leaves batches running rather than let the wait turn into a per-test timeout (a Fail)."""

from __future__ import annotations

import time

import pytest

from suite.conformance.test_properties import _DRAIN_S, _DRAIN_SHARE, drain_within


def test_without_a_per_test_timeout_the_drain_keeps_its_own_bound() -> None:
    assert drain_within(0.0, time.monotonic() - 1000.0) == _DRAIN_S


def test_the_drain_ends_by_its_share_of_the_test_time() -> None:
    started = time.monotonic() - 50.0
    assert drain_within(120.0, started) == pytest.approx(_DRAIN_SHARE * 120.0 - 50.0, abs=0.5)


def test_a_run_that_used_the_test_time_drains_nothing() -> None:
    assert drain_within(120.0, time.monotonic() - 110.0) == 0.0


def test_a_long_test_time_does_not_lengthen_the_drain() -> None:
    assert drain_within(3600.0, time.monotonic()) == _DRAIN_S
