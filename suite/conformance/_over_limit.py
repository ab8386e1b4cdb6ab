"""A tier's limit provoked by bursts until one is judged (``over_limit``) and the judgement of what they
showed (``expect_refused``), shared by the 429 tests of ``test_limits``.

A burst (``suite.conformance._burst``) is sent again when it proves nothing, when the server answered
it busy (503 + Retry-After, waited out as told) and when it shows a violation for the first time: a
violation fails only when a second burst shows one too, since a one-off may be the path's doing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from suite.checks import TargetBusy, disabled, expect_status, fail
from suite.conformance._burst import ADMISSIBLE_FACTOR, BurstResult, burst
from suite.conformance._helpers import Memo, chat_body
from suite.conformance._streams import wait_admitted
from suite.http import Api
from suite.liveness import TargetStopped
from suite.pace import MARGIN_FLOOR_S, Pace
from suite.target import Target

__all__ = ["HOLD_MAX_TOKENS", "LIMITS", "OverLimit", "expect_refused", "hold_body", "over_limit"]

LIMITS = {"free": 1, "pro": 3}
#: Before a burst that follows another, this long plus the path's margin (the hung-up streams' slots;
#: LIMIT-012 gives a slot 5 s to be free after a hang-up).
SETTLE_S = 5.0
#: Bursts tried before the test Skips as inconclusive.
BURST_ATTEMPTS = 5
#: A held stream should last this long at the target's measured speed (within the caps below).
HOLD_SECONDS = 10.0
HOLD_MIN_TOKENS, HOLD_MAX_TOKENS = 400, 1500


def hold_body(model: str, pace: Pace) -> dict[str, Any]:
    """A stream that stays open: a long answer asked for, the cap scaled to the target's speed."""
    tokens = int(min(HOLD_MAX_TOKENS, max(HOLD_MIN_TOKENS, pace.tokens_per_s * HOLD_SECONDS)))
    return chat_body(
        model,
        "Write a very long story about a lighthouse keeper and the sea, at least 2000 words.",
        max_tokens=tokens,
        stream=True,
    )


@dataclass
class OverLimit:
    """The bursts sent for one tier: the refusal judged (if any) and what the others proved."""

    #: The burst whose refusal the 429 tests judge (a refusal with the limit admitted), or the last one.
    result: BurstResult
    attempts: int
    #: Bursts that showed a violation (over-admission, queueing, a refusal below the limit).
    violations: list[BurstResult] = field(default_factory=list)
    #: Why the bursts that were not judged could not be (busy answers, timing not admissible).
    notes: list[str] = field(default_factory=list)


#: A violation must be seen in this many bursts before it fails (a one-off may be the path's doing).
VIOLATIONS_TO_FAIL = 2


#: An inconclusive burst is followed by a larger one: ``limit + 1`` requests times the attempt, at most
#: this many times. A path that spreads a burst's requests out (a proxy forwarding each after its own
#: pause) may let a fast server finish each before the next arrives; more requests at once make it
#: likely that ``limit + 1`` of them meet at the server. Any request beyond the limit must be refused.
BURST_GROWTH_CAP = 3


def _burst_once(
    api: Api, target: Target, tier: str, pace: Pace, attempt: int, slow_path: bool
) -> BurstResult:
    """One burst. ``slow_path``: an earlier burst found timing not admissible (or the preflight did):
    then its admitted streams are left unread after their first event, so the server holds their slots
    and refuses the rest however fast it generates, and the burst stays at ``limit + 1`` (a larger one
    admits more than the limit one after another, which proves nothing without timing)."""
    wait_admitted(api, tier)
    body = hold_body(target.chat_model, pace)
    expected_s = _expected_s(body["max_tokens"], pace)
    unread = slow_path or expected_s < ADMISSIBLE_FACTOR * pace.path_s
    return burst(
        api,
        tier,
        body,
        LIMITS[tier],
        size=(LIMITS[tier] + 1) * (1 if unread else min(attempt, BURST_GROWTH_CAP)),
        deadline_s=pace.deadline(HOLD_MAX_TOKENS),
        margin_s=pace.margin_s,
        expected_s=expected_s,
        path_s=pace.path_s,
        unread=unread,
    )


def _expected_s(tokens: int, pace: Pace) -> float:
    """How long a held stream should last at the server: the decode time alone (a TTFT seen through a
    proxy holds its forwarding delay too). Unknown speed: a slow engine's (infinite) on a fast path, but
    none at all where the path itself is slow, since nothing then rules out a fast server behind it."""
    if pace.measured:
        return tokens / pace.tokens_per_s
    return float("inf") if pace.margin_s <= MARGIN_FLOOR_S else 0.0


def over_limit(api: Api, memo: Memo, target: Target, tier: str, pace: Pace) -> OverLimit:
    """``limit + 1`` simultaneous streams of ``tier`` until one burst shows a refusal with the limit
    admitted, or a violation is seen twice (shared by the 429 tests).

    A burst answered 503 + Retry-After (a busy server, 000) is waited out as told (bounded) and sent
    again; a violation seen once is sent again too, and fails only when it repeats."""
    target.key(tier)
    if target.profile != "42ai":
        disabled("tier concurrency limits are documented for the 42ai profile only (000)")

    def run() -> OverLimit:
        over: OverLimit | None = None
        attempts = 0
        slow_path = False
        while attempts < BURST_ATTEMPTS:
            attempts += 1
            if attempts > 1:
                # The last burst's streams were hung up: their slots may take a moment to be free at
                # the server (LIMIT-012 allows 5 s), and a refusal then is no refusal below the limit.
                _pause(api, SETTLE_S + pace.margin_s)
            result = _burst_once(api, target, tier, pace, attempts, slow_path)
            slow_path = slow_path or not result.timing_admissible
            stopped = next((s.error for s in result.streams if isinstance(s.error, TargetStopped)), None)
            if stopped is not None:
                raise stopped  # the endpoint hung earlier in the run: nothing to judge, no more bursts
            if over is None:
                over = OverLimit(result, attempts)
            over.attempts = attempts
            kind = result.violation_kind()
            if result.void and kind is None:
                wait = min(_retry_after(result), BUSY_WAIT_CAP_S)
                statuses = sorted({s.status for s in result.void if s.status is not None})
                over.notes.append(f"burst {attempts} was answered {statuses} (busy or no upstream)")
                _pause(api, wait)
                continue
            if kind is not None:
                over.violations.append(result)
                if sum(v.violation_kind() == kind for v in over.violations) >= VIOLATIONS_TO_FAIL:
                    break
                continue
            if not result.timing_admissible:
                over.notes.append(f"burst {attempts}: {result.why_not_admissible()}")
            if result.refusal_proves_limit:
                over.result = result
                if not over.violations:
                    break
            elif result.refused:
                over.notes.append(
                    f"burst {attempts}: refused, but {len(result.admitted)} were admitted, more than the "
                    "limit, and the path hides whether they ran side by side"
                )
            if not over.result.refusal_proves_limit:
                over.result = result
        wait_admitted(api, tier)
        assert over is not None
        return over

    return memo(f"over-limit-{tier}", run)


#: At most this long is waited for a busy server between bursts (000's 503 says 30 s).
BUSY_WAIT_CAP_S = 30.0


def _pause(api: Api, seconds: float) -> None:
    """Sleep between bursts; Skip (TargetBusy) when the test's time for waits would run out first."""
    if api.wait_deadline is not None and time.monotonic() + seconds > api.wait_deadline:
        raise TargetBusy(
            f"the bursts could not go on within the test's time (a pause of {seconds:.0f} s was due): "
            "the target was busy or the path too slow to judge the limit"
        )
    time.sleep(seconds)


def _retry_after(result: BurstResult) -> float:
    for s in result.busy:
        assert s.response is not None
        try:
            return max(0.0, float(s.response.headers["retry-after"]))
        except ValueError:
            continue
    return BUSY_WAIT_CAP_S


def expect_refused(over: OverLimit, tier: str) -> httpx.Response:
    limit = LIMITS[tier]
    repeated = _repeated(over)
    if repeated:
        first, again = repeated[0], repeated[-1]
        fail(
            f"the {tier} tier's limit of {limit} was not enforced in {len(repeated)} of "
            f"{over.attempts} simultaneous bursts of {limit + 1} requests",
            expected=f"at most {limit} in flight: request {limit + 1} of a simultaneous burst refused "
            "with 429",
            received=f"{first.violation()}; again: {again.violation()} (timing margin "
            f"{again.margin_s:.2f} s for the path)",
            response=_evidence(again),
        )
    result = over.result
    refusals = result.refused if result.refusal_proves_limit else []
    errors = [s.error for s in result.streams if s.error is not None]
    if not refusals:
        if errors and not over.violations:
            raise errors[0]
        seen = (
            f"; a violation seen once, not repeated: {over.violations[0].violation()}"
            if over.violations
            else ""
        )
        notes = f" ({'; '.join(dict.fromkeys(over.notes))})" if over.notes else ""
        pytest.skip(
            f"inconclusive after {over.attempts} bursts: no refusal of the {limit + 1} simultaneous "
            f"{tier} requests was seen, and no over-admission or queue could be proven{seen}{notes}"
        )
    refusal = refusals[0]
    assert refusal.response is not None
    expect_status(
        refusal.response,
        429,
        message=f"request {limit + 1} of the {tier} tier while {limit} were in flight was not refused",
    )
    return refusal.response


def _repeated(over: OverLimit) -> list[BurstResult]:
    """The bursts of the violation kind seen at least ``VIOLATIONS_TO_FAIL`` times (else none)."""
    for v in over.violations:
        same = [w for w in over.violations if w.violation_kind() == v.violation_kind()]
        if len(same) >= VIOLATIONS_TO_FAIL:
            return same
    return []


def _evidence(result: BurstResult) -> httpx.Response | None:
    """The response to show with a violation: the queued one, a refusal, or the last admitted."""
    queued = result.queued
    if queued is not None and queued.response is not None:
        return queued.response
    if result.refused and result.refused[0].response is not None:
        return result.refused[0].response
    admitted = result.admitted
    return admitted[-1].response if admitted else None
