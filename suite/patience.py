"""The patience rule of the suite's client (``suite.http``): the one exception to "no retries".

000 documents 503 + ``Retry-After`` for a busy server and 429 + ``Retry-After`` for a key at its
concurrency limit. A 503 that carries ``Retry-After``, and a 429 of a key while one of the suite's own
requests of that key is open or has just ended (the server may not have seen it end yet: a proxy relays
the end later), are not verdicts on the request: the client waits as told (bounded) and sends it again.
A target still busy past the bounds ends the test as Skip (``TargetBusy``), never as a Fail of whatever
the test judges. Tests that judge those answers themselves turn the rule off (``Patience.off``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from suite.checks import TargetBusy

__all__ = [
    "PATIENT_BUDGET_S",
    "PATIENT_MAX_WAIT_S",
    "PATIENT_RETRIES",
    "SELF_CAUSED_S",
    "Patience",
    "retry_after_s",
]

#: A request is sent again at most this many times ...
PATIENT_RETRIES = 2
#: ... after a wait of its Retry-After, capped at this (000's 503 says 30 s) ...
PATIENT_MAX_WAIT_S = 30.0
#: ... and the waits of a whole session add up to at most this much.
PATIENT_BUDGET_S = 600.0
#: A 429 counts as the suite's own doing while a request of the key is open or ended this recently
#: (plus the path's margin): 000 names no moment at which an ended request's slot must be free.
SELF_CAUSED_S = 5.0


def retry_after_s(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (integer or decimal), or None when absent or not a number."""
    value = response.headers.get("retry-after", "").strip().lower().removesuffix("s")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class Patience:
    """The rule's state for one client: waits so far, statuses turned off, the suite's own open requests
    per tier (and when the last one ended), and the running test's deadline for any wait."""

    def __init__(self, margin_s: Callable[[], float]) -> None:
        #: The path's timing margin (``Pace.margin_s``) once measured.
        self.margin_s = margin_s
        self._lock = threading.Lock()
        self._off: list[frozenset[int]] = []
        self.waited_s_total = 0.0
        self._open: dict[str, int] = {}
        self._ended: dict[str, float] = {}
        #: Monotonic time by which any wait must be over (set per test), or None.
        self.deadline: float | None = None

    @contextmanager
    def off(self, *statuses: int) -> Iterator[None]:
        """The rule off for ``statuses`` (default 429 and 503), for every thread, within the block."""
        turned_off = frozenset(statuses or (429, 503))
        with self._lock:
            self._off.append(turned_off)
        try:
            yield
        finally:
            with self._lock:
                self._off.remove(turned_off)

    def recent(self, tier: str | None, first: bool, own: int = 0) -> bool:
        """Whether a 429 of ``tier`` now may be the suite's own doing: another request of the key is open
        (``own``: this request's count, already open), or (first attempt only: a retry has waited
        Retry-After since) one ended a moment ago."""
        if tier is None:
            return False
        margin = self.margin_s()
        with self._lock:
            if self._open.get(tier, 0) - own > 0:
                return True
            return first and time.monotonic() - self._ended.get(tier, -1e9) < SELF_CAUSED_S + margin

    @contextmanager
    def counted(self, tier: str | None) -> Iterator[None]:
        """Count a request of ``tier`` as open while it runs (a 429 of the key may then be its doing)."""
        if tier is None:
            yield
            return
        with self._lock:
            self._open[tier] = self._open.get(tier, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._open[tier] -= 1
                self._ended[tier] = time.monotonic()

    def busy_wait(self, response: httpx.Response, self_caused: bool) -> float | None:
        """Seconds to wait before sending again, when the patience rule applies to ``response``."""
        status = response.status_code
        if status not in (429, 503) or any(status in off for off in self._off):
            return None
        wait = retry_after_s(response)
        if wait is None or (status == 429 and not self_caused):
            return None  # judged as it is: no Retry-After, or a 429 nothing of the suite's explains
        return min(wait, PATIENT_MAX_WAIT_S)

    def patiently(
        self, attempt: Callable[[bool], tuple[httpx.Response, bool]], close: bool = False
    ) -> httpx.Response:
        """``attempt(first)`` (the response and whether the key was busy with the suite's own requests
        when it was sent) until the patience rule no longer applies; ``TargetBusy`` when it runs out:
        after ``PATIENT_RETRIES``, past the session's budget, or past ``wait_deadline`` (the running
        test's time, so a wait never turns into a test timeout, which would be a Fail)."""
        response, self_caused = attempt(True)
        for tries in range(PATIENT_RETRIES + 1):
            wait = self.busy_wait(response, self_caused)
            if wait is None:
                return response
            if close:
                response.close()
            late = self.deadline is not None and time.monotonic() + wait > self.deadline
            if tries == PATIENT_RETRIES or self.waited_s_total + wait > PATIENT_BUDGET_S or late:
                why = "the test's time would run out" if late else f"after {tries + 1} tries"
                raise TargetBusy(
                    f"the target stayed busy: HTTP {response.status_code} with Retry-After "
                    f"{response.headers.get('retry-after')}, {why} ({self.waited_s_total:.0f} s waited in "
                    "this session); the request was never judged",
                    response=response,
                )
            with self._lock:
                self.waited_s_total += wait
            time.sleep(wait)
            response, self_caused = attempt(False)
        return response  # pragma: no cover - the loop returns or raises
