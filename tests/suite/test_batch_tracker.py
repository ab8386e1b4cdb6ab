"""The wait for background batches before timing-sensitive tests (suite.conformance.conftest)."""

from __future__ import annotations

from typing import Any

import httpx

from suite.conformance.conftest import BatchTracker


class _Target:
    def has_key(self, tier: str) -> bool:
        return tier == "pro"


#: A stand-in typed loosely: the tracker only asks which tiers have a key.
TARGET: Any = _Target()


class _Api:
    """Answers every batch lookup with ``status``; counts the lookups."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.gets = 0

    def get(self, path: str, *, tier: str) -> httpx.Response:
        self.gets += 1
        return httpx.Response(200, json={"batch_id": path.rsplit("/", 1)[-1], "status": self.status})


def _tracker_with_one_batch() -> BatchTracker:
    tracker = BatchTracker()
    request = httpx.Request("POST", "http://t/v1/batch")
    tracker.record(httpx.Response(200, json={"batch_id": "b1", "status": "pending"}, request=request))
    assert tracker.pending == ["b1"]
    return tracker


def test_an_unknown_status_ends_the_wait_at_once() -> None:
    """A target that says "done" (not a documented status) must not hold every later test up."""
    tracker, api = _tracker_with_one_batch(), _Api("done")
    fake: Any = api
    tracker.wait_quiet(fake, TARGET, deadline_s=30)
    assert tracker.pending == [] and api.gets == 1


def test_a_batch_still_running_at_the_deadline_is_waited_for_only_once() -> None:
    tracker, api = _tracker_with_one_batch(), _Api("running")
    fake: Any = api
    tracker.wait_quiet(fake, TARGET, deadline_s=0)
    assert tracker.pending == []
    tracker.wait_quiet(fake, TARGET, deadline_s=30)
    assert api.gets == 1  # the second wait asked nothing


def test_a_running_batch_is_waited_for() -> None:
    tracker, api = _tracker_with_one_batch(), _Api("running")
    fake: Any = api
    tracker.wait_quiet(fake, TARGET, deadline_s=0.6)
    assert api.gets >= 2  # looked again after half a second
