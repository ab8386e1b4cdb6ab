"""What a burst of ``limit + 1`` streams proves (``suite.conformance._burst``), on streams with made-up
client clocks: a violation needs timing the path cannot explain, and a busy 503 proves nothing."""

from __future__ import annotations

import httpx
import pytest

from suite.conformance._burst import BurstResult, BurstStream, queue_wait_s


def _stream(first: float, end: float | None, *, sent: float = 0.0, status: int = 200) -> BurstStream:
    stream = BurstStream(sent_at=sent, written_at=sent, status=status, headers_at=first, first_at=first)
    stream.ended_at = end
    return stream


def _refused(status: int = 429, headers: dict[str, str] | None = None) -> BurstStream:
    stream = BurstStream(status=status, headers_at=0.01)
    stream.response = httpx.Response(status, headers={"Retry-After": "5"} if headers is None else headers)
    return stream


def _result(
    *streams: BurstStream, limit: int = 1, path_s: float = 0.002, expected_s: float = 10.0
) -> BurstResult:
    return BurstResult(
        limit,
        list(streams),
        margin_s=max(0.05, 2 * path_s),
        expected_s=expected_s,
        path_s=path_s,
        stopped_at=100.0,
    )


def test_two_streams_open_together_on_a_fast_path_are_over_admission() -> None:
    result = _result(_stream(0.1, 5.0), _stream(0.2, 5.1))
    assert result.over_admitted
    assert result.violation() == "2 streams admitted and streaming at the same moment"


def test_an_overlap_shorter_than_the_margin_proves_nothing() -> None:
    # The second stream's first event came 0.3 s before the first one's end, on a path whose slowest
    # round trip was 0.5 s: the first stream may have ended at the server before the second began.
    result = _result(_stream(0.1, 1.0), _stream(0.7, 2.0), path_s=0.5, expected_s=10.0)
    assert not result.over_admitted
    assert result.violation() is None


def test_streams_too_short_for_the_path_make_timing_inadmissible() -> None:
    result = _result(_stream(0.1, 5.0), _stream(0.2, 5.1), path_s=0.5, expected_s=0.3)
    assert not result.timing_admissible
    assert not result.over_admitted and result.queued is None
    assert "cannot show what the server did" in result.why_not_admissible()


def test_a_request_answered_only_after_another_ended_is_queued() -> None:
    held = _stream(0.1, 3.0)
    late = _stream(3.5, 6.0, sent=0.0)
    result = _result(held, late)
    assert result.queued is late
    assert "queued" in (result.violation() or "")


def test_a_late_answer_within_the_path_margin_is_not_a_queue() -> None:
    held = _stream(0.1, 0.3)
    late = _stream(0.6, 2.0, sent=0.0)
    assert _result(held, late, path_s=0.4).queued is None


def test_a_busy_503_voids_the_burst() -> None:
    busy = _refused(503, {"Retry-After": "30"})
    result = _result(_stream(0.1, 5.0), busy, _refused(503, {"Retry-After": "30"}), limit=2)
    assert result.busy and not result.refused
    assert result.violation() is None


def test_a_proxy_s_502_voids_the_burst_and_a_429_is_judged_first() -> None:
    assert _result(_stream(0.1, 5.0), _refused(502, {})).violation_kind() is None
    result = _result(_stream(0.1, 5.0), _refused(500, {}), _refused(), limit=2)
    assert [s.status for s in result.refused] == [429, 500]


def test_every_request_beyond_the_limit_answered_busy_is_the_limit_with_the_wrong_answer() -> None:
    result = _result(_stream(0.1, 5.0), _refused(503, {"Retry-After": "30"}))
    assert result.violation_kind() == "busy-at-limit"
    assert "503 (busy) instead of 429" in (result.violation() or "")


def test_a_503_without_retry_after_is_a_refusal_to_judge() -> None:
    result = _result(_stream(0.1, 5.0), _refused(503, {}))
    assert not result.busy and len(result.refused) == 1


def test_a_refusal_below_the_limit_is_a_violation() -> None:
    result = _result(_stream(0.1, 5.0), _refused(), _refused(), limit=2)
    assert result.refused_below_limit
    assert result.violation() == "HTTP 429 while only 1 of 2 slots were in use"


def test_a_refusal_at_the_limit_is_no_violation() -> None:
    result = _result(_stream(0.1, 5.0), _refused())
    assert result.conclusive and result.violation() is None


@pytest.mark.parametrize(("margin", "wait"), [(0.05, 5.0), (2.0, 8.0)])
def test_the_queue_wait_grows_with_the_path(margin: float, wait: float) -> None:
    assert queue_wait_s(margin) == wait


def test_a_refusal_proves_the_limit_only_with_no_more_than_the_limit_admitted() -> None:
    # A grown burst (4 requests, limit 1): two admitted one after the other as far as the client can
    # tell, two refused. A server with a limit of 2 answers just so: the refusals prove nothing.
    grown = _result(_stream(0.1, 5.0), _stream(0.2, 5.1), _refused(), _refused(), path_s=0.5, expected_s=0.3)
    assert grown.refused and not grown.refusal_proves_limit
    assert _result(_stream(0.1, 5.0), _refused(), _refused(), _refused()).refusal_proves_limit
