"""Deadlines derived from the target's measured speed (suite.pace)."""

from __future__ import annotations

import httpx

from suite.pace import CAP_FACTOR, Pace, measure_pace


def test_deadline_grows_with_the_work_asked_for() -> None:
    pace = Pace(ttft_s=0.1, tokens_per_s=40.0, floor_s=30.0, measured=True)
    assert pace.deadline(8) == 30.0  # short work: the configured floor
    assert pace.deadline(2000) > pace.deadline(400) > 30.0
    assert pace.pipeline_deadline() > pace.deadline(512)


def test_a_mismeasured_speed_cannot_turn_a_hang_into_an_hour() -> None:
    pace = Pace(ttft_s=0.5, tokens_per_s=0.5, floor_s=30.0, measured=True)
    assert pace.pipeline_deadline() == CAP_FACTOR * 30.0


def test_unmeasured_pace_says_so() -> None:
    assert "not measured" in Pace(note="the measurement failed").describe()


def test_request_deadline_reads_the_cap_of_a_chat_body() -> None:
    pace = Pace(ttft_s=0.1, tokens_per_s=10.0, floor_s=30.0, measured=True)
    chat = "/v1/chat/completions"
    both = {"max_tokens": 400, "max_completion_tokens": 200}
    assert pace.request_deadline(chat, both) == pace.deadline(200)
    assert pace.request_deadline(chat, {}, default_tokens=8) == pace.deadline(8)
    assert pace.request_deadline("/v1/pipeline", None) == pace.pipeline_deadline()
    assert pace.request_deadline("/v1/models", None) == 30.0


def _never_answered(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


def test_a_target_that_never_answers_keeps_every_deadline_at_the_floor() -> None:
    """No answer to the measurement is not a slow engine: waiting the cap on every request would turn a
    hanging target into hours of waiting."""
    with httpx.Client(transport=httpx.MockTransport(_never_answered)) as client:
        pace = measure_pace(client, "http://t/v1/chat/completions", {}, "m", floor_s=7.0)
    assert pace.unanswered and not pace.measured
    assert pace.deadline(2000) == pace.pipeline_deadline() == 7.0
    assert "stays at 7 s" in pace.describe()


def test_a_refused_measurement_still_assumes_a_slow_engine() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500))) as client:
        pace = measure_pace(client, "http://t/v1/chat/completions", {}, "m", floor_s=7.0)
    assert not pace.unanswered and not pace.measured
    assert pace.deadline(2000) == CAP_FACTOR * 7.0
