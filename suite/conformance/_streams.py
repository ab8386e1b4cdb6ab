"""Streamed chat completions read by their own threads: held open to occupy a tier's slots, or sent as a
burst (``suite.conformance._burst``).

``read_chat_stream`` is the one reader both use: it records the client's clock at each step of a stream
(sent, written to the target's socket, status line, first event, end) so the tests can tell when the
server admitted a stream and when it ended it. ``StreamHold`` holds ``n`` streams of a tier open;
``probe_while_held`` sends one more request while they are held.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from suite.checks import ConformanceFailure, TargetBusy, fail
from suite.conformance._helpers import CHAT, MODELS
from suite.http import Api
from suite.patience import PATIENT_MAX_WAIT_S, retry_after_s
from suite.sse import SseReader

__all__ = [
    "ChatStream",
    "Probe",
    "StreamHold",
    "ends_stream",
    "holding",
    "probe_while_held",
    "read_chat_stream",
    "wait_admitted",
]

#: A served probe must be seen in this many conclusive attempts before it proves anything.
PROBE_REPEATS = 2
#: How long a held stream is read at most (a hold is released long before).
HOLD_READ_S = 300.0
#: httpcore's trace event once the whole request was written to the target's socket.
_REQUEST_WRITTEN = "http11.send_request_body.complete"


@dataclass
class ChatStream:
    """One streamed chat completion read by its own thread, with the client's clock at each step."""

    sent_at: float = 0.0
    #: When the whole request had been written to the target's socket (httpcore's trace).
    written_at: float | None = None
    status: int | None = None
    response: httpx.Response | None = None
    headers_at: float | None = None
    #: The first event's arrival: from then on the server has certainly admitted the stream.
    first_at: float | None = None
    #: When the stream ended by itself (finish_reason, [DONE] or EOF seen); None while open.
    ended_at: float | None = None
    #: Events after the first one that do not end the stream.
    content_events: int = 0
    error: BaseException | None = None
    #: Set when the stream's status line (or its failure) is known.
    answered: threading.Event = field(default_factory=threading.Event)
    #: Set when the first event, the refusal or the failure is known.
    settled: threading.Event = field(default_factory=threading.Event)


def read_chat_stream(
    api: Api,
    tier: str,
    body: dict[str, Any],
    stream: ChatStream,
    *,
    stop: threading.Event,
    deadline_s: float,
    start: threading.Barrier | None = None,
    patient: bool = True,
    unread_after_first: bool = False,
) -> None:
    """Send ``body`` as a streaming chat completion of ``tier`` and record what happens in ``stream``.

    Meant as a thread's target: it never raises (a failure goes to ``stream.error``) and reads until the
    stream ends or ``stop`` is set; leaving closes the stream, which disconnects it. ``start``: wait
    for the other threads of a burst before sending. ``patient=False``: a busy answer is recorded as
    it came (a burst judges busy answers itself), not waited out (``suite.http``).
    ``unread_after_first``: after the first event, read nothing more until ``stop`` (the connection stays
    open): the server then cannot finish sending, and holds its slot, however fast it generates; the
    stream's end is then never known (no timing judgement may rest on it).
    """
    try:

        def trace(name: str, info: Any) -> None:
            if name == _REQUEST_WRITTEN:
                stream.written_at = time.monotonic()

        if start is not None:
            start.wait()
        stream.sent_at = time.monotonic()
        with api.stream("POST", CHAT, tier=tier, json=body, trace=trace, patient=patient) as response:
            stream.headers_at = time.monotonic()
            stream.status = response.status_code
            stream.response = response
            stream.answered.set()
            if response.status_code != 200:
                response.read()
                return
            for event in SseReader(response, deadline_s=deadline_s):
                if stream.first_at is None:
                    stream.first_at = event.arrived
                    stream.settled.set()
                    if unread_after_first:
                        stop.wait()
                        return
                elif ends_stream(event.data):
                    # The finishing event's arrival, not the reader's return: the reader may still wait
                    # for the server to close the connection after [DONE].
                    stream.ended_at = stream.ended_at or event.arrived
                else:
                    stream.content_events += 1
                if stop.is_set():
                    return
            stream.ended_at = stream.ended_at or time.monotonic()
    except BaseException as exc:
        stream.error = exc
    finally:
        stream.answered.set()
        stream.settled.set()


class StreamHold:
    """Hold ``n`` streaming chat completions of one tier open, each read by its own thread.

    Streams are opened one after another, each once the previous one sent its first event (so the
    server certainly admitted it). The threads keep reading (recording when a stream ends by itself)
    until the hold is released, then close their streams, which disconnects them.
    """

    def __init__(self, api: Api, tier: str, body: dict[str, Any], *, admit_deadline_s: float = 30.0) -> None:
        self.api = api
        self.tier = tier
        self.body = body
        self.admit_deadline_s = admit_deadline_s
        self.streams: list[ChatStream] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def open(self, count: int) -> None:
        for _ in range(count):
            held = self._open_waiting_out_busy()
            if not held.settled.is_set():
                fail(
                    "a streaming request sent no event in time",
                    expected=f"the first event within {self.admit_deadline_s:g} s",
                    received="nothing",
                )
            if held.error is not None:
                raise held.error
            if held.status != 200:
                return  # the caller judges the refusal

    def _open_waiting_out_busy(self) -> ChatStream:
        """``try_open``, and when the answer is 503 + Retry-After (000: busy), wait as told and try once
        more (the patience rule, ``suite.patience``; the stream itself is read impatiently so that its
        first event is waited for, not a busy spell). Still busy: ``TargetBusy`` (a Skip)."""
        for tries in range(2):
            held = self.try_open(self.admit_deadline_s)
            wait = retry_after_s(held.response) if held.status == 503 and held.response is not None else None
            if wait is None:
                return held
            wait = min(wait, PATIENT_MAX_WAIT_S)
            deadline = self.api.wait_deadline
            if tries == 1 or (deadline is not None and time.monotonic() + wait > deadline):
                raise TargetBusy(
                    f"the target stayed busy: a held stream was answered HTTP 503 with Retry-After "
                    f"{held.response.headers.get('retry-after') if held.response is not None else ''}",
                    response=held.response,
                )
            self.streams.remove(held)
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def try_open(self, deadline_s: float) -> ChatStream:
        """Open one more stream and wait up to ``deadline_s`` for its first event or its refusal.

        Never fails: the caller reads ``settled``, ``status`` and ``error`` of the returned stream (which
        is held, and closed by ``release``, whatever happened).
        """
        held = ChatStream()
        thread = threading.Thread(
            target=read_chat_stream,
            args=(self.api, self.tier, self.body, held),
            kwargs={"stop": self._stop, "deadline_s": HOLD_READ_S, "patient": False},
            daemon=True,
            name=f"conform42-hold-{self.tier}-{len(self.streams)}",
        )
        self.streams.append(held)
        self._threads.append(thread)
        thread.start()
        held.settled.wait(max(0.0, deadline_s))
        return held

    @property
    def admitted(self) -> list[ChatStream]:
        return [s for s in self.streams if s.status == 200 and s.first_at is not None]

    def open_after(self, moment: float, margin_s: float = 0.05) -> bool:
        """True when every admitted stream was still open ``margin_s`` after ``moment``."""
        return all(s.ended_at is None or s.ended_at > moment + margin_s for s in self.admitted)

    def wait_content(self, events: int, deadline_s: float = 10.0) -> None:
        """Wait until every admitted stream delivered ``events`` content events (or ended)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if all(s.content_events >= events or s.ended_at is not None for s in self.admitted):
                return
            time.sleep(0.005)

    def release(self, join_s: float = 10.0) -> None:
        self._stop.set()
        end = time.monotonic() + join_s
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))


def ends_stream(data: str) -> bool:
    """Whether an SSE data field ends a chat stream: [DONE], a finish_reason, or the usage chunk."""
    if data.strip() == "[DONE]":
        return True
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        return False
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return (
        isinstance(choices, list)
        and any(isinstance(c, dict) and c.get("finish_reason") is not None for c in choices)
    ) or (isinstance(choices, list) and not choices)


@contextmanager
def holding(api: Api, tier: str, body: dict[str, Any], count: int) -> Iterator[StreamHold]:
    hold = StreamHold(api, tier, body)
    try:
        hold.open(count)
        yield hold
    finally:
        hold.release()


def wait_admitted(api: Api, tier: str, deadline_s: float = 10.0) -> httpx.Response:
    """Poll ``GET /v1/models`` until the key is admitted again (not 429); the last response."""
    end = time.monotonic() + deadline_s
    while True:
        response = api.get(MODELS, tier=tier)
        if response.status_code != 429 or time.monotonic() >= end:
            return response
        time.sleep(0.05)


@dataclass
class Probe:
    """The extra request sent while streams were held, and whether the observation is conclusive."""

    response: httpx.Response
    hold_admitted: int
    conclusive: bool
    #: True when ``response`` is the refusal of one of the held streams, not of the probe.
    held_refused: bool = False


def probe_while_held(
    api: Api,
    tier: str,
    body: dict[str, Any],
    count: int,
    send: Callable[[], httpx.Response],
    *,
    content_events: int = 0,
    attempts: int = 3,
    margin_s: float = 0.05,
) -> Probe:
    """Hold ``count`` streams of ``tier``, then ``send()`` one more request; repeat until conclusive.

    Conclusive means every held stream was admitted and still open ``margin_s`` (the path's timing
    margin) after the probe's answer came, in ``PROBE_REPEATS`` attempts, so a 2xx answer then proves
    the limit was not enforced.
    Each attempt starts once the key is admitted. Refusals of held streams are returned as the probe
    (status != 200) for the caller to judge.
    """
    last: Probe | None = None
    served = 0  # conclusive attempts whose probe was served: one may be the path's doing, two are not
    for _ in range(attempts):
        wait_admitted(api, tier)
        with holding(api, tier, body, count) as hold:
            if len(hold.admitted) < count:
                refused = next((s for s in hold.streams if s.status != 200), None)
                if refused is not None and refused.response is not None:
                    return Probe(refused.response, len(hold.admitted), conclusive=False, held_refused=True)
                continue
            if content_events:
                hold.wait_content(content_events)
            response = send()
            received = time.monotonic()
            last = Probe(response, count, hold.open_after(received, margin_s))
        if last.response.status_code == 429:
            break
        served += last.conclusive
        if served >= PROBE_REPEATS:
            break
    wait_admitted(api, tier)
    if last is not None and last.response.status_code != 429:
        # A served probe counts only when it was seen again (a proxy may relay a held stream's end
        # late, so one conclusive-looking attempt can be a stream that had ended at the server).
        last = dataclasses.replace(last, conclusive=served >= PROBE_REPEATS)
    if last is None:
        raise ConformanceFailure(
            "could not hold streams open",
            expected=f"{count} admitted streams",
            received="streams that ended before they could be held",
        )
    return last
