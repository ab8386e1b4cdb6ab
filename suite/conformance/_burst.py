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

Every client timestamp is an upper bound of the server's moment (an event is read after it is sent), so
a server's end is placed no earlier than ``margin_s`` before this client read it (the readers are
threads that do nothing but read), and a stream still open when the burst stops reading counts as open
until ``margin_s`` before that moment.

Only when none of these is seen (the streams did not overlap: the target finished each before it even
looked at the next) is the attempt inconclusive; it is repeated, and after the last attempt the caller
Skips and the verdict says that a MUST could not be judged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from suite.conformance._streams import ChatStream, read_chat_stream
from suite.http import Api

__all__ = ["BurstResult", "BurstStream", "burst"]

#: How long the burst waits for every request's first answer before it suspects a queue.
QUEUE_WAIT_S = 5.0
#: Delivery delay allowed between the server sending an event and this client reading it.
MARGIN_S = 0.05


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
    released_at: float | None = None
    #: When the burst stopped reading the streams it had admitted.
    stopped_at: float | None = None

    @property
    def admitted(self) -> list[BurstStream]:
        return [s for s in self.streams if s.status == 200 and s.first_at is not None]

    @property
    def refused(self) -> list[BurstStream]:
        return [s for s in self.streams if s.status is not None and s.status != 200]

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
        return self.max_overlap() > self.limit

    @property
    def queued(self) -> BurstStream | None:
        """A request the target held back while another one of the burst occupied the slot."""
        for s in self.admitted:
            if s.after_release:
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
    def conclusive(self) -> bool:
        return bool(self.refused) or self.over_admitted or self.queued is not None


def burst(api: Api, tier: str, body: dict[str, Any], limit: int, *, deadline_s: float = 300.0) -> BurstResult:
    """Send ``limit + 1`` streaming requests of ``tier`` at once and watch them (see the module doc).

    Streams are read as they come (so end times are accurate); once every request was answered and the
    admitted streams have ended, or after ``QUEUE_WAIT_S`` with some request still unanswered, the
    admitted streams are closed (a client hang-up) and an unanswered request gets up to ``deadline_s``
    more: if it is admitted then, it was queued.
    """
    api.token(tier)  # exchanged before the barrier, so no request of the burst waits for it
    count = limit + 1
    streams = [BurstStream() for _ in range(count)]
    start = threading.Barrier(count)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=read_chat_stream,
            args=(api, tier, body, s),
            kwargs={"stop": stop, "deadline_s": deadline_s, "start": start},
            daemon=True,
            name=f"conform42-burst-{tier}-{i}",
        )
        for i, s in enumerate(streams)
    ]
    for thread in threads:
        thread.start()
    result = BurstResult(limit, streams)
    end = time.monotonic() + QUEUE_WAIT_S
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
    for thread in threads:
        thread.join(10.0)
    return result
