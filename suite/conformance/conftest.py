"""Fixtures shared by the behaviour tests.

* ``memo``: one exchange, many checks (a session-wide memo; failures are re-raised per test).
* ``response_log``: every error response (status >= 400) the suite's client saw in this session, so
  rare answers (503, 500, 429 of another API) are judged whenever they occur (``LIMIT-011``...).
* ``aged_token`` / ``expired_token``: a task token taken at session start and aged in the background;
  the tests that need it expired are moved to the end of the run (``@late``) and wait only for the rest
  of its 60 seconds, so the whole run is not a minute longer.
* ``midlife_token``: a task token well into its life (30 to 55 s old) for AUTH-004: the session-start
  token when it is young enough, else one of the tokens the shelf exchanges between tests every
  ``SHELF_PERIOD_S`` (a long run); late tests that use it run before those that need expiry, so the wait
  for 30 s overlaps the wait for 60.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from suite.checks import disabled
from suite.conformance._helpers import LATE_ATTR, Memo, first_tier, json_or_none, per_test_timeout_s
from suite.http import Api
from suite.pace import Pace
from suite.plugin import announce
from suite.target import Target

#: Extra seconds past the documented lifetime before an aged token is presented.
EXPIRY_MARGIN_S = 2.0
#: A token "well into its life" (AUTH-004) is at least this old ...
MIDLIFE_MIN_S = 30.0
#: ... and younger than this (5 s short of the documented 60, for clock skew and the request itself).
MIDLIFE_MAX_S = 55.0
#: Between tests, the shelf exchanges another token at most this often.
SHELF_PERIOD_S = 15.0
#: The fixture whose tests must come last of the late ones (they need the session token expired).
_EXPIRED = "expired_token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move ``@late`` tests to the end, keeping the relative order of both groups; among the late tests,
    those that need the session token expired go last (a mid-life check must see it before that)."""
    late = [item for item in items if getattr(getattr(item, "obj", None), LATE_ATTR, False)]
    if late:
        moved = set(map(id, late))
        late.sort(key=lambda item: _EXPIRED in getattr(item, "fixturenames", ()))  # stable
        items[:] = [item for item in items if id(item) not in moved] + late


@pytest.fixture(scope="session")
def memo() -> Memo:
    return Memo()


@pytest.fixture
def tier(target: Target) -> str:
    """The tier of ordinary requests: the first one with a key (free, pro, internal)."""
    return first_tier(target)


# --------------------------------------------------------------------------------- busy waits
#: A wait of the patience rule (``suite.patience``) must end within this share of the test's time, so
#: that waiting out a busy target never becomes a per-test timeout (a Fail) but a Skip (TargetBusy).
WAIT_SHARE = 0.6


@pytest.fixture(autouse=True)
def _wait_deadline(api: Api, request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test gets a deadline for busy waits: a share of its pytest-timeout time (none: no bound);
    and the liveness count (``suite.liveness``) learns which test sends the requests that follow."""
    seconds = per_test_timeout_s(request.config)
    api.wait_deadline = time.monotonic() + WAIT_SHARE * seconds if seconds > 0 else None
    api.liveness.current_test = request.node.nodeid
    try:
        yield
    finally:
        api.wait_deadline = None


# ------------------------------------------------------------------------------------------ pace
@pytest.fixture(scope="session", autouse=True)
def pace(target: Target, api: Api, pytestconfig: pytest.Config) -> Pace:
    """The target's generation speed, measured once before the first test (and printed): request
    deadlines follow the work each request asks for (``suite.pace``)."""
    tier = next((t for t in ("internal", "pro", "free") if target.has_key(t)), None)
    measured = Pace(floor_s=target.timeout, note="no API key given")
    if tier is not None:
        try:
            with api.impatient():  # before the first test: a busy answer gives the slow fallback
                headers = api.auth(tier)
        except Exception as exc:
            measured = Pace(floor_s=target.timeout, note=f"no task token: {type(exc).__name__}")
        else:
            measured = api.measure_pace(headers)
    api.pace = measured
    announce(pytestconfig, measured.describe())
    return measured


# --------------------------------------------------------------------------------- response log
@dataclass
class ResponseLog:
    """Error responses (status >= 400) seen by the suite's client, bodies read."""

    responses: list[httpx.Response] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            response.read()  # error bodies are small; streamed ones are read here, before the test
        except httpx.HTTPError:
            return
        with self._lock:
            self.responses.append(response)

    def with_status(self, *statuses: int) -> list[httpx.Response]:
        with self._lock:
            return [r for r in self.responses if r.status_code in statuses]


@pytest.fixture(scope="session", autouse=True)
def response_log(api: Api) -> ResponseLog:
    """Attach the log to the suite client's response hooks for the whole session."""
    log = ResponseLog()
    api.on_response(log.record)
    return log


# --------------------------------------------------------------------------- background batches
#: Longest wait, before a test, for batches submitted earlier to finish (well inside the per-test
#: timeout, which counts the setup too).
BATCH_QUIET_S = 60.0
#: Waited for only while a batch says it is in one of these (000 shows pending; running is the state
#: between). Any other status, documented or not, ends the wait: the batch tests judge statuses, and a
#: status this wait does not know must not hold every later test up.
_IN_PROGRESS = ("pending", "running", "in_progress", "queued", "validating", "finalizing")


@dataclass
class BatchTracker:
    """Batches the suite's client submitted: their generation runs in the background on the target, so
    tests that time requests (limits, streams, pipelines) wait for them to finish first."""

    pending: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: httpx.Response) -> None:
        request = response.request
        if request.method != "POST" or not request.url.path.endswith("/v1/batch"):
            return
        if not 200 <= response.status_code < 300:
            return
        try:
            response.read()
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return
        batch_id = body.get("batch_id") if isinstance(body, dict) else None
        if isinstance(batch_id, str) and batch_id:
            with self._lock:
                self.pending.append(batch_id)

    def _running(self, api: Api, target: Target, batch_id: str) -> bool:
        for tier in ("internal", "pro", "free"):
            if not target.has_key(tier):
                continue
            try:
                response = api.get(f"/v1/batch/{batch_id}", tier=tier)
            except Exception:  # a courtesy wait: the batch tests judge batches
                return False
            if response.status_code == 200:
                body = json_or_none(response)
                status = body.get("status") if isinstance(body, dict) else None
                return status in _IN_PROGRESS
        return False  # no key owns it (or it is gone): nothing to wait for

    def wait_quiet(self, api: Api, target: Target, deadline_s: float = BATCH_QUIET_S) -> None:
        end = time.monotonic() + deadline_s
        while True:
            with self._lock:
                waiting = list(self.pending)
            still = [b for b in waiting if self._running(api, target, b)]
            expired = time.monotonic() >= end
            with self._lock:
                # A batch still running at the deadline is not waited for again: one slow or stuck
                # batch costs one wait, not one before every later test.
                self.pending = [b for b in self.pending if (b in still and not expired) or b not in waiting]
            if not still or expired:
                return
            time.sleep(0.5)


@pytest.fixture(scope="session", autouse=True)
def batch_tracker(api: Api) -> BatchTracker:
    tracker = BatchTracker()
    api.on_response(tracker.record)
    return tracker


@pytest.fixture(autouse=True)
def _quiet_batches(
    request: pytest.FixtureRequest, batch_tracker: BatchTracker, api: Api, target: Target
) -> None:
    """Before every test outside the batch module: earlier batches have finished (bounded wait)."""
    if not request.node.nodeid.split("::")[0].endswith("test_batch.py"):
        with api.impatient():  # a courtesy wait: a busy answer ends it, it does not wait that out too
            batch_tracker.wait_quiet(api, target)


# ------------------------------------------------------------------------------------ token age
@dataclass(frozen=True)
class AgedToken:
    """A task token exchanged at session start (or why there is none)."""

    tier: str | None
    token: str | None
    issued: float
    problem: str | None = None


@pytest.fixture(scope="session", autouse=True)
def aged_token(target: Target, api: Api) -> AgedToken:
    """Exchange a key at session start; the token then ages while the other tests run.

    The internal key is preferred: it has no concurrency limit, so the batch that AUTH-012 submits with
    it cannot take a slot another test counts on.
    """
    now = time.monotonic()
    if target.profile != "42ai":
        return AgedToken(None, None, now, "task tokens exist only in the 42ai profile")
    tier = next((t for t in ("internal", "pro", "free") if target.has_key(t)), None)
    if tier is None:
        return AgedToken(None, None, now, "no API key given")
    try:
        with api.impatient():  # a busy answer is no token either: no wait before the first test
            token = api.new_token(tier)
    except Exception as exc:  # judged by the tests that use it, not here
        return AgedToken(tier, None, now, f"token exchange failed: {exc}")
    return AgedToken(tier, token, time.monotonic())


@pytest.fixture
def expired_token(aged_token: AgedToken, target: Target) -> Iterator[AgedToken]:
    """The session's aged token once it is past its documented lifetime (waits only the remainder)."""
    if aged_token.token is None or aged_token.tier is None:
        disabled(aged_token.problem or "no aged token")
    remaining = aged_token.issued + target.token_ttl_s + EXPIRY_MARGIN_S - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    yield aged_token


@dataclass
class TokenShelf:
    """Task tokens of one tier with their issue times, oldest first: the session-start token, then one
    exchanged between tests every ``SHELF_PERIOD_S`` at most (so a run longer than a minute still has
    a token 30 to 55 s old at hand, usually without waiting)."""

    tier: str | None
    tokens: list[tuple[float, str]] = field(default_factory=list)
    problem: str | None = None
    #: When an exchange was last tried: a failing (or hanging) exchange is not retried before every test.
    last_attempt: float = field(default_factory=time.monotonic)

    def restock(self, api: Api) -> None:
        now = time.monotonic()
        if self.tier is None or now - self.last_attempt < SHELF_PERIOD_S:
            return
        self.last_attempt = now
        try:
            with api.impatient():  # between tests: a busy answer is not waited out here
                token = api.new_token(self.tier)
        except Exception:  # a failed exchange is judged by the AUTH tests; the shelf just stays as it is
            return
        self.tokens.append((time.monotonic(), token))
        # Tokens past their documented life are of no use here.
        horizon = time.monotonic() - api.target.token_ttl_s
        self.tokens = [entry for entry in self.tokens if entry[0] > horizon]

    def midlife(self) -> tuple[float, str] | None:
        """The oldest token still younger than ``MIDLIFE_MAX_S`` (the least wait to ``MIDLIFE_MIN_S``)."""
        now = time.monotonic()
        return next((entry for entry in self.tokens if now - entry[0] < MIDLIFE_MAX_S), None)


@pytest.fixture(scope="session")
def token_shelf(aged_token: AgedToken) -> TokenShelf:
    if aged_token.token is None or aged_token.tier is None:
        return TokenShelf(None, problem=aged_token.problem or "no aged token")
    return TokenShelf(aged_token.tier, [(aged_token.issued, aged_token.token)])


@pytest.fixture(autouse=True)
def _restock_token_shelf(token_shelf: TokenShelf, api: Api) -> None:
    """Runs before every test, never during one (no request races a test's own)."""
    token_shelf.restock(api)


@pytest.fixture
def midlife_token(token_shelf: TokenShelf) -> AgedToken:
    """A task token between ``MIDLIFE_MIN_S`` and ``MIDLIFE_MAX_S`` old; waits only what it lacks."""
    if token_shelf.tier is None:
        disabled(token_shelf.problem or "no aged token")
    entry = token_shelf.midlife()
    if entry is None:
        pytest.skip(f"no task token younger than {MIDLIFE_MAX_S:g} s was at hand (token exchange failed?)")
    issued, token = entry
    remaining = issued + MIDLIFE_MIN_S - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    return AgedToken(token_shelf.tier, token, issued)
