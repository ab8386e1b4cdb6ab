"""The pipeline request's deadline follows the measured speed (``Pace.pipeline_deadline``), never less
than the request timeout, and is the request timeout when the speed was not measured."""

from __future__ import annotations

import httpx
import pytest

from suite.conformance import test_pipeline
from suite.http import Api
from suite.pace import Pace
from suite.samples import PNG_DATA_URL
from suite.target import Target

KEYS = {"free": "sk-free", "pro": "sk-pro", "internal": "sk-internal"}


def _read_timeout(pace: Pace | None) -> float:
    seen: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            return httpx.Response(200, json={"task_token": "t"})
        seen.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json={"status": "completed", "results": [], "final_output": ""})

    target = Target(base_url="http://t", keys=KEYS, timeout=30.0)
    with Api(target, transport=httpx.MockTransport(handle)) as api:
        api.pace = pace
        test_pipeline._post(api, target, PNG_DATA_URL)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(
    ("pace", "expected"),
    [
        (None, 30.0),  # not measured: the request timeout
        (Pace(ttft_s=0.1, tokens_per_s=500.0, floor_s=30.0, measured=True), 30.0),  # fast: the floor
    ],
    ids=["unmeasured", "fast"],
)
def test_pipeline_deadline_has_the_request_timeout_as_floor(pace: Pace | None, expected: float) -> None:
    assert _read_timeout(pace) == expected


def test_a_slow_target_gets_the_measured_pipeline_deadline_not_a_fixed_one() -> None:
    slow = Pace(ttft_s=2.0, tokens_per_s=5.0, floor_s=30.0, measured=True)
    assert slow.pipeline_deadline() > 120.0  # more than the old fixed 120 s
    assert _read_timeout(slow) == slow.pipeline_deadline()
