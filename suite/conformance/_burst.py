"""Provoke a tier's concurrency limit with a burst: ``limit + 1`` long streams sent at the same moment.

Why a burst and not "hold ``limit`` streams, then send one more": a fast target finishes a held stream
before the extra request arrives, and then a correct server and an over-admitting one look the same. In
a burst, every request is in flight from the start, so:

* a server that enforces the limit refuses at least one of them (429): judged;
* a server that admits them all serves them interleaved, and their streams overlap in time. Overlap is
  *proven* when there is a moment at which every one of ``limit + 1`` streams had delivered its first
  event (so the server had admitted it) and none had delivered its end yet, with ``margin_s`` to spare
  for the delay between the server sending an event and this client reading it: over-admission;
* a server that *queues* the extra request answers it only once a slot is free: the request was with
  the target (written to its socket) before another stream of the burst ended, and its answer started
  only after that end; or it got no answer for ``QUEUE_WAIT_S`` while the admitted streams ran and was
  served once they were closed. That is not a refusal either: judged as such.

Every client timestamp is an upper bound of the server's moment (an event is read after it is sent), and
a proxy, a slow network or a busy machine between them may relay an event late. So a server's end is
placed no earlier than ``margin_s`` before this client read it, where ``margin_s`` is the session's
measured path margin (``Pace.margin_s``: a multiple of the slowest plain round trip, never under 50 ms),
and a stream still open when the burst stops reading counts as open until ``margin_s`` before that moment.

A timing judgement (over-admission, queueing) is *admissible* only when a held stream should last, at the
measured speed (``expected_s``), several times the slowest round trip of the path (``path_s``): the
requests of a burst leave together, but a proxy may forward them up to that far apart, and a server that
finished one stream before the next request even reached it did nothing wrong, though the client, to
which the path was still relaying the first stream, saw them overlap. A burst whose timing is not
admissible can still be judged by its refusals.

The path is measured during the burst too: a control thread sends ``GET /v1/models`` without credentials
(any answer counts) one after another while the burst runs. A proxy whose event loop is busy relaying
the burst's streams answers it late, and then the burst's margin and path grow to the slowest control
round trip (``BurstControl``): a request the proxy did not even read for seconds is not one the server
queued.

A 503 with ``Retry-After`` among the answers (000: the server is out of GPU memory) voids the burst: it
is no verdict on the concurrency limit. Only when none of these is seen (the streams did not overlap:
the target finished each before it even looked at the next) is the attempt inconclusive; the caller
repeats it (and demands that a violation be seen twice), and after the last attempt Skips: the verdict
says that a MUST could not be judged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from suite.conformance._helpers import MODELS
from suite.conformance._streams import ChatStream, read_chat_stream
from suite.http import Api
from suite.pace import PATH_FACTOR

__all__ = ["BurstControl", "BurstResult", "BurstStream", "burst"]

#: How long the burst waits for every request's first answer before it suspects a queue (at least; a
#: slow path raises it, see ``queue_wait_s``).
QUEUE_WAIT_S = 5.0
#: Delivery delay allowed between the server sending an event and this client reading it, when the
#: session measured no path (``Pace.margin_s`` otherwise).
MARGIN_S = 0.05
#: An intermediary's answers for "no answer from upstream": they void a burst like a busy answer.
GATEWAY_STATUSES = (502, 504)
#: A timing judgement needs a held stream expected to last this many of the path's round trips.
ADMISSIBLE_FACTOR = 3.0


#: Pause between two control round trips of a burst.
CONTROL_PERIOD_S = 0.2


class BurstControl:
    """Round trips of ``GET /v1/models`` (no credentials) sent one after another while a burst runs: the
    path's delay at the moment of the judgement (see the module docstring)."""

    def __init__(self, api: Api, timeout_s: float) -> None:
        self.api = api
        self.timeout_s = timeout_s
        self.slowest = 0.0
        self._started: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="conform42-burst-control")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._started = time.monotonic()
            try:
                self.api.send("GET", MODELS, timeout=self.timeout_s, patient=False)
            except Exception:
                self.slowest = max(self.slowest, self.timeout_s)  # no answer at all: the path is stalled
                return
            finally:
                self.slowest = max(self.slowest, time.monotonic() - self._started)
                self._started = None
            self._stop.wait(CONTROL_PERIOD_S)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float:
        """Stop; the slowest round trip seen, counting one still unanswered as lasting until now."""
        started = self._started
        pending = time.monotonic() - started if started is not None else 0.0
        self._stop.set()
        return max(self.slowest, pending)

    def join(self) -> None:
        self._thread.join(self.timeout_s)


def queue_wait_s(margin_s: float) -> float:
    """How long a request may go unanswered in a burst before it counts as held back: well past the
    path's margin, so a proxy that forwards it late is not taken for a queue."""
    return max(QUEUE_WAIT_S, 4 * margin_s)


@dataclass
class BurstStream(ChatStream):
    """One request of a burst, with the client's clock at each step."""

    #: Answered only after the burst closed the admitted streams (see ``BurstResult.queued``).
    after_release: bool = False


@dataclass
class BurstResult:
    """What one burst saw; the judgements are properties so a test can state which one it relies on."""

    limit: int
    streams: list[BurstStream]
    margin_s: float = MARGIN_S
    #: How long a held stream should last at the server at the measured speed (inf: unknown, slow).
    expected_s: float = float("inf")
    #: The path's slowest plain round trip (0: not measured).
    path_s: float = 0.0
    released_at: float | None = None
    #: When the burst stopped reading the streams it had admitted.
    stopped_at: float | None = None
    #: Whether an admitted stream was still open when the burst released the waiting request.
    occupied_at_release: bool = False

    @property
    def admitted(self) -> list[BurstStream]:
        return [s for s in self.streams if s.status == 200 and s.first_at is not None]

    @property
    def busy(self) -> list[BurstStream]:
        """Answers that say the server is busy (503 with Retry-After): no verdict on the limit."""
        return [
            s
            for s in self.streams
            if s.status == 503 and s.response is not None and "retry-after" in s.response.headers
        ]

    @property
    def void(self) -> list[BurstStream]:
        """Answers that void the burst: busy ones, and an intermediary's 502/504 (no upstream answer)."""
        return [*self.busy, *(s for s in self.streams if s.status in GATEWAY_STATUSES)]

    @property
    def refused(self) -> list[BurstStream]:
        """The refusals to judge, 429s first (a burst may hold a 429 beside another answer)."""
        void = self.void
        refused = [s for s in self.streams if s.status is not None and s.status != 200 and s not in void]
        return sorted(refused, key=lambda s: s.status != 429)

    @property
    def timing_admissible(self) -> bool:
        """Whether this burst's timing can be evidence at all (see the module docstring)."""
        return self.expected_s >= ADMISSIBLE_FACTOR * self.path_s

    def why_not_admissible(self) -> str:
        return (
            f"a held stream was expected to last {self.expected_s:.2f} s at the measured speed, under "
            f"{ADMISSIBLE_FACTOR:g} x the path's slowest round trip of {self.path_s:.2f} s, so an overlap "
            "or a late answer seen by the client cannot show what the server did"
        )

    @property
    def unanswered(self) -> list[BurstStream]:
        return [s for s in self.streams if s.status is None and s.error is None]

    def max_overlap(self) -> int:
        """The most admitted streams provably in flight at one moment (see the module docstring)."""
        intervals = []
        for s in self.admitted:
            end = self._end(s)
            if s.first_at is not None and end - self.margin_s > s.first_at:
                intervals.append((s.first_at, end - self.margin_s))
        best = 0
        for start, _ in intervals:
            best = max(best, sum(1 for a, b in intervals if a <= start < b))
        return best

    def _end(self, s: BurstStream) -> float:
        """The client's time of the stream's end, or of the moment the burst stopped reading it."""
        if s.ended_at is not None:
            return s.ended_at
        return self.stopped_at if self.stopped_at is not None else float("inf")

    @property
    def over_admitted(self) -> bool:
        return self.timing_admissible and self.max_overlap() > self.limit

    @property
    def queued(self) -> BurstStream | None:
        """A request the target held back while another one of the burst occupied the slot."""
        if not self.timing_admissible:
            return None
        for s in self.admitted:
            waited = (s.headers_at or s.sent_at) - s.sent_at
            if s.after_release and self.occupied_at_release and waited > queue_wait_s(self.margin_s):
                return s
            if s.headers_at is None or s.written_at is None:
                continue
            for other in self.admitted:
                if other is s or other.ended_at is None:
                    continue
                # ``s`` reached the target while ``other`` was still in flight, and its answer began
                # only after ``other`` had ended.
                reached_while_busy = s.written_at < other.ended_at - self.margin_s
                if reached_while_busy and s.headers_at - self.margin_s > other.ended_at:
                    return s
        return None

    @property
    def refusal_proves_limit(self) -> bool:
        """A refusal while no more than ``limit`` of the burst were admitted in all: then the server had
        at most ``limit`` in flight when it refused, whatever the path hid. With more admitted (a burst
        larger than ``limit + 1``), they may have run side by side, and the refusal proves nothing."""
        return bool(self.refused) and len(self.admitted) <= self.limit

    @property
    def conclusive(self) -> bool:
        return bool(self.refused) or self.over_admitted or self.queued is not None

    @property
    def refused_below_limit(self) -> bool:
        """A refusal while fewer than ``limit`` streams of the burst were admitted."""
        return bool(self.refused) and len(self.admitted) < self.limit

    def violation_kind(self) -> str | None:
        """Which violation this burst shows, if any: ``over-admission``, ``queue``, ``below-limit`` or
        ``busy-at-limit`` (every request beyond the limit answered 503 + Retry-After with the limit
        admitted: the limit enforced with the wrong answer). A violation must repeat to fail, and only
        the same kind counts as a repeat."""
        if self.void:
            beyond = len(self.streams) - self.limit
            at_limit = len(self.admitted) == self.limit and len(self.busy) == beyond == len(self.void)
            return "busy-at-limit" if at_limit else None
        if self.over_admitted:
            return "over-admission"
        if self.queued is not None:
            return "queue"
        if self.refused_below_limit:
            return "below-limit"
        return None

    def violation(self) -> str | None:
        """What this burst proves against the limit, in words for the failure message (see
        ``violation_kind``); None when it proves none."""
        kind = self.violation_kind()
        if kind is None:
            return None
        if kind == "busy-at-limit":
            return (
                f"the {len(self.busy)} requests beyond the limit of {self.limit} were answered 503 (busy) "
                "instead of 429"
            )
        if kind == "over-admission":
            return f"{self.max_overlap()} streams admitted and streaming at the same moment"
        queued = self.queued
        if queued is not None:
            how = (
                "after the other streams were closed"
                if queued.after_release
                else "after another stream of the key had ended"
            )
            waited = (queued.headers_at or queued.sent_at) - queued.sent_at
            return f"request {self.limit + 1} queued: no answer for {waited:.2f} s, then HTTP 200 {how}"
        status = self.refused[0].status
        return f"HTTP {status} while only {len(self.admitted)} of {self.limit} slots were in use"


def burst(
    api: Api,
    tier: str,
    body: dict[str, Any],
    limit: int,
    *,
    deadline_s: float = 300.0,
    margin_s: float = MARGIN_S,
    expected_s: float = float("inf"),
    path_s: float = 0.0,
    size: int | None = None,
    unread: bool = False,
) -> BurstResult:
    """Send ``limit + 1`` (or ``size``) streaming requests of ``tier`` at once and watch them (see the
    module doc).

    Streams are read as they come (so end times are accurate); once every request was answered and the
    admitted streams have ended, or after ``queue_wait_s`` with some request still unanswered, the
    admitted streams are closed (a client hang-up) and an unanswered request gets up to ``deadline_s``
    more: if it is admitted then, it was queued. ``margin_s``, ``expected_s``, ``path_s``: see
    ``BurstResult``. ``unread``: admitted streams are not read past their first event (their slots stay
    taken at the server, which makes a refusal likely on a path that spreads the requests out); for
    bursts whose timing is not admissible anyway, since no stream's end is then known.
    """
    api.token(tier)  # exchanged before the barrier, so no request of the burst waits for it
    count = size or limit + 1
    streams = [BurstStream() for _ in range(count)]
    start = threading.Barrier(count)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=read_chat_stream,
            args=(api, tier, body, s),
            kwargs={
                "stop": stop,
                "deadline_s": deadline_s,
                "start": start,
                "patient": False,
                "unread_after_first": unread,
            },
            daemon=True,
            name=f"conform42-burst-{tier}-{i}",
        )
        for i, s in enumerate(streams)
    ]
    control = BurstControl(api, timeout_s=min(deadline_s, api.timeout))
    control.start()
    for thread in threads:
        thread.start()
    result = BurstResult(limit, streams, margin_s=margin_s, expected_s=expected_s, path_s=path_s)
    if unread:
        result.expected_s = 0.0  # no end is read: nothing may be judged by timing
    end = time.monotonic() + queue_wait_s(margin_s)
    for s in streams:
        s.answered.wait(max(0.0, end - time.monotonic()))
    # Let admitted streams deliver their first event before judging (a slow engine's first token).
    first_end = time.monotonic() + deadline_s
    while time.monotonic() < first_end and any(
        s.status == 200 and s.first_at is None and s.error is None and s.ended_at is None for s in streams
    ):
        time.sleep(0.005)
    waiting = [s for s in streams if not s.answered.is_set()]
    if waiting and not result.refused:
        # Some request has no answer while the others stream: close them and see whether it is served.
        result.stopped_at = result.released_at = time.monotonic()
        result.occupied_at_release = any(s.ended_at is None for s in result.admitted)
        stop.set()
        for s in waiting:
            s.answered.wait(deadline_s)
            s.after_release = s.status == 200
        # A request answered only after the release is read to its first event before the threads stop.
        release_end = time.monotonic() + min(deadline_s, 30.0)
        while time.monotonic() < release_end and any(
            s.after_release and s.first_at is None and s.error is None for s in streams
        ):
            time.sleep(0.005)
    else:
        # Keep reading a little past the last first event, so an overlap can be shown with the margin.
        firsts = [s.first_at for s in streams if s.first_at is not None]
        settle = (max(firsts) if firsts else time.monotonic()) + 3 * result.margin_s
        while time.monotonic() < settle and any(
            s.status == 200 and s.ended_at is None and s.error is None for s in streams
        ):
            time.sleep(0.005)
        result.stopped_at = time.monotonic()
    stop.set()
    # The path as slow as the control found it while the burst ran: the margins grow, never shrink.
    slowest = control.stop()
    result.path_s = max(result.path_s, slowest)
    result.margin_s = max(result.margin_s, PATH_FACTOR * slowest)
    for thread in threads:
        thread.join(10.0)
    control.join()
    return result
