"""Tier concurrency: ``limit + 1`` long streams sent as one burst get at least one 429 with Retry-After 5
(``suite.conformance._burst`` says what proves over-admission or queueing instead); slots are freed
when requests end or clients hang up (the KV-cache 503 is in ``test_limits_kv``).

Held streams ask for a long answer, longer on a fast target (the session's measured speed), so they are
still open when the next request arrives. An attempt that proves nothing either way is repeated; after
the last one the test Skips, and a MUST left unjudged makes the verdict INCONCLUSIVE.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from suite.checks import disabled, expect, expect_envelope, expect_retry_after, expect_status
from suite.conformance._helpers import CHAT, EMBED, MODELS, Memo, chat_body, late
from suite.conformance._over_limit import LIMITS, expect_refused, hold_body, over_limit
from suite.conformance._streams import Probe, holding, probe_while_held, wait_admitted
from suite.conformance.conftest import ResponseLog
from suite.http import Api
from suite.markers import requirement
from suite.pace import Pace
from suite.target import Target


@pytest.fixture(autouse=True)
def _judging_limits(api: Api) -> Iterator[None]:
    """These tests judge 429s themselves: the client's patience rule is off for them. A 503 with
    Retry-After (a busy server, 000) is still waited out: it is not what these tests judge."""
    with api.impatient(429):
        yield


INTERNAL_FLOOR = 8
#: How long a freed slot may take to become usable again after a client hangs up.
RELEASE_DEADLINE_S = 5.0
#: How long the slot of a request that ended may take to be free for the next one (plus the path's
#: margin; 000 names no moment, and the planted late release takes 8 s).
RELEASE_GRACE_S = 5.0


def _one_more(api: Api, target: Target, tier: str) -> httpx.Response:
    return api.post(CHAT, chat_body(target.chat_model, max_tokens=1), tier=tier)


def _expect_probe_refused(probe: Probe, tier: str) -> httpx.Response:
    """The extra request sent while ``limit`` streams were held (LIMIT-007/010: a mid-stream probe, or
    another endpoint): a 429, or Skip when the held streams ended before its answer."""
    limit = LIMITS[tier]
    response = probe.response
    if probe.held_refused:
        expect_status(
            response, 200, message=f"the {tier} tier was refused one of its {limit} concurrent requests"
        )
    if response.status_code != 429 and not probe.conclusive:
        pytest.skip(
            f"inconclusive: the held {tier} streams ended before the extra request was answered, or "
            "an extra request served while they were open was not seen twice"
        )
    expect_status(
        response,
        429,
        message=f"request {limit + 1} of the {tier} tier while {limit} were in flight was not refused",
    )
    return response


@requirement("LIMIT-001")
def test_free_second_concurrent_request_is_429(api: Api, memo: Memo, target: Target, pace: Pace) -> None:
    expect_refused(over_limit(api, memo, target, "free", pace), "free")


@requirement("LIMIT-002")
def test_pro_fourth_concurrent_request_is_429(api: Api, memo: Memo, target: Target, pace: Pace) -> None:
    expect_refused(over_limit(api, memo, target, "pro", pace), "pro")


@requirement("LIMIT-004")
@pytest.mark.parametrize("tier", ["free", "pro"])
def test_429_retry_after_is_5(api: Api, memo: Memo, target: Target, pace: Pace, tier: str) -> None:
    expect_retry_after(expect_refused(over_limit(api, memo, target, tier, pace), tier), 5)


@requirement("ERR-010")
def test_429_type_is_rate_limit_exceeded(
    api: Api, memo: Memo, target: Target, pace: Pace, response_log: ResponseLog
) -> None:
    """42ai: the refusal of a burst over the tier limit. Fortytwo documents no limit a client can
    reach on purpose, so there every 429 the session saw is judged (Skip when none was)."""
    if target.profile == "42ai":
        tier = "free" if target.has_key("free") else "pro"
        seen = [expect_refused(over_limit(api, memo, target, tier, pace), tier)]
    else:
        seen = response_log.with_status(429)
        if not seen:
            pytest.skip("no 429 was seen in this session")
    for response in seen:
        expect_envelope(response, error_type="rate_limit_exceeded")


@requirement("LIMIT-003")
def test_internal_admits_eight_concurrent(api: Api, target: Target, pace: Pace) -> None:
    target.key("internal")
    for _attempt in range(3):
        wait_admitted(api, "internal")
        with holding(api, "internal", hold_body(target.chat_model, pace), INTERNAL_FLOOR) as hold:
            refused = [s for s in hold.streams if s.status != 200]
            if refused and refused[0].response is not None:
                expect(
                    refused[0].status != 429,
                    "the internal tier was refused with 429 below 8 requests",
                    expected=f"{INTERNAL_FLOOR} concurrent requests admitted",
                    received=f"HTTP 429 after {len(hold.admitted)} admitted",
                    response=refused[0].response,
                )
                expect_status(refused[0].response, 200)
            if len(hold.admitted) == INTERNAL_FLOOR and hold.open_after(time.monotonic(), margin_s=0.0):
                return
    pytest.skip("inconclusive: the internal streams ended before all 8 were open at once")


@requirement("LIMIT-006")
@pytest.mark.parametrize("how", ["success", "error", "stream"])
def test_finished_request_frees_its_slot(api: Api, target: Target, pace: Pace, how: str) -> None:
    """The free key (one slot): a request that ended (200, an error, or a stream read to its end) must
    not block the next one. The error is a model no server has (404 in the documents): quick on any
    server, whether it is refused before or after admission; either way the next request must be
    admitted."""
    target.key("free")
    wait_admitted(api, "free")
    if how == "stream":
        body = chat_body(target.chat_model, max_tokens=4, stream=True)
        with api.stream("POST", CHAT, tier="free", json=body) as response:
            expect_status(response, 200)
            response.read()
    elif how == "error":
        api.post(CHAT, chat_body("conform42-no-such-model", max_tokens=4), tier="free")
    else:
        expect_status(_one_more(api, target, "free"), 200)
    response = _admitted_within(api, target, RELEASE_GRACE_S + pace.margin_s)
    expect_status(
        response,
        200,
        message=f"the next request after a finished one ({how}) was not admitted within "
        f"{RELEASE_GRACE_S + pace.margin_s:.1f} s",
    )


def _admitted_within(api: Api, target: Target, seconds: float) -> httpx.Response:
    """One more free request, sent again while it is refused with 429, for at most ``seconds``."""
    started = time.monotonic()
    while True:
        response = _one_more(api, target, "free")
        if response.status_code != 429 or time.monotonic() - started > seconds:
            return response
        time.sleep(0.1)


@requirement("LIMIT-007")
def test_open_stream_holds_its_slot(api: Api, target: Target, pace: Pace) -> None:
    """Probed after the held stream delivered content (mid-stream, not only at its first byte)."""
    target.key("free")
    probe = probe_while_held(
        api,
        "free",
        hold_body(target.chat_model, pace),
        1,
        lambda: _one_more(api, target, "free"),
        content_events=2,
        margin_s=pace.margin_s,
    )
    _expect_probe_refused(probe, "free")


@requirement("LIMIT-010")
@pytest.mark.parametrize("endpoint", ["models-with-another-token", "embeddings"])
def test_limit_counts_across_endpoints_and_tokens(
    api: Api, target: Target, pace: Pace, endpoint: str
) -> None:
    target.key("free")

    def send() -> httpx.Response:
        if endpoint == "embeddings":
            return api.post(EMBED, {"model": target.embed_model or "42-embed", "input": "Hello"}, tier="free")
        token = api.new_token("free")
        return api.get(MODELS, tier=None, headers={"Authorization": f"Bearer {token}"})

    probe = probe_while_held(api, "free", hold_body(target.chat_model, pace), 1, send, margin_s=pace.margin_s)
    _expect_probe_refused(probe, "free")


@requirement("LIMIT-012")
def test_client_disconnect_frees_slot(api: Api, target: Target, pace: Pace) -> None:
    """A free key's stream is closed by the client after its first event (while it is still generating);
    a new request must be admitted within a few seconds."""
    target.key("free")
    for _attempt in range(3):
        wait_admitted(api, "free")
        with holding(api, "free", hold_body(target.chat_model, pace), 1) as hold:
            held = hold.streams[0]
            if held.response is not None:
                expect_status(held.response, 200, message="a free key's only stream was refused")
            still_open = hold.open_after(time.monotonic(), margin_s=0.0)
        if not still_open:
            continue
        deadline = RELEASE_DEADLINE_S + pace.margin_s
        response = _admitted_within(api, target, deadline)
        expect_status(
            response,
            200,
            message=f"the free key was not admitted within {deadline:.1f} s of closing its stream",
        )
        return
    pytest.skip("inconclusive: the stream ended by itself before the client could hang up")


# ------------------------------------------------------------------------ seen during the session
@late
@requirement("LIMIT-005")
def test_fortytwo_429_has_retry_after(
    api: Api, target: Target, pace: Pace, response_log: ResponseLog
) -> None:
    """Fortytwo documents no tier limits, so a 429 is provoked with four held streams of the first key,
    and every 429 seen in the session is checked too. Skip when no 429 could be seen."""
    tier = next((t for t in ("free", "pro", "internal") if target.has_key(t)), None)
    if tier is None:
        disabled("no API key given")
    probe_while_held(api, tier, hold_body(target.chat_model, pace), 4, lambda: _one_more(api, target, tier))
    seen = response_log.with_status(429)
    if not seen:
        pytest.skip("no 429 was provoked or seen in this session")
    for response in seen:
        expect(
            "retry-after" in response.headers,
            "a 429 carries no Retry-After",
            expected="a Retry-After header",
            received="none",
            response=response,
        )


@late
@requirement("LIMIT-004")
def test_every_42ai_429_seen_has_retry_after_5(response_log: ResponseLog, target: Target) -> None:
    seen = response_log.with_status(429)
    if not seen:
        pytest.skip("no 429 was seen in this session")
    for response in seen:
        expect_retry_after(response, 5)
