"""The suite's Server-Sent Events reader: bounded in time, events and bytes, and strict about framing.

``read_stream`` (or ``SseReader`` for event-by-event reading, as the concurrency tests need) turns an
httpx streaming response into :class:`SseEvent` objects. Whatever the server does, reading ends in
bounded time: an endless stream, one that stalls or one that floods is a ``ConformanceFailure`` once the
deadline, the event cap or the byte cap is passed (a stall between two reads is also bounded by the
request's read timeout, which ``suite.http`` maps to a failure).

The reader records what the framing tests need instead of judging it: every event's arrival time,
whether an event carried several ``data:`` lines or other fields, whether the stream ended in the middle
of an event, what came after ``data: [DONE]`` and whether the server closed the stream after it.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from suite.checks import ConformanceFailure, expect, fail

__all__ = [
    "DONE",
    "SseEvent",
    "SseReader",
    "SseTranscript",
    "expect_event_stream",
    "read_stream",
]

DONE = "[DONE]"
DEFAULT_DEADLINE_S = 60.0
DEFAULT_MAX_EVENTS = 5000
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
#: After ``[DONE]``, how long the reader waits for the server to close the stream.
DONE_GRACE_S = 5.0


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its data (``data:`` lines joined by newlines) and when it arrived."""

    data: str
    arrived: float  # time.monotonic()
    data_lines: int = 1
    other_fields: tuple[str, ...] = ()

    @property
    def is_done(self) -> bool:
        return self.data.strip() == DONE

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseTranscript:
    """Everything read from one stream."""

    response: httpx.Response
    started: float
    events: list[SseEvent] = field(default_factory=list)
    #: Events after the first ``[DONE]`` (none in a conforming stream).
    after_done: list[SseEvent] = field(default_factory=list)
    #: True when the stream ended with a partial event (data lines without the closing blank line).
    unterminated: bool = False
    #: True when the server closed the stream (EOF) rather than the reader stopping early.
    closed: bool = False
    done_seen: bool = False
    #: Lines that are neither fields, comments nor blank (not SSE at all).
    stray_lines: list[str] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def chunks(self) -> list[SseEvent]:
        """The events before ``[DONE]`` that are not the terminator."""
        return [e for e in self.events if not e.is_done]

    def payloads(self) -> list[Any]:
        """The decoded JSON of every chunk; a Fail names the first event that is not JSON."""
        decoded: list[Any] = []
        for number, event in enumerate(self.chunks, start=1):
            try:
                decoded.append(event.json())
            except json.JSONDecodeError:
                fail(
                    f"streamed event {number} is not JSON",
                    expected="data: <one JSON chunk>",
                    received=f"data: {event.data[:200]!r}",
                    response=self.response,
                )
        return decoded


def expect_event_stream(response: httpx.Response) -> None:
    """200 with ``Content-Type: text/event-stream`` (parameters such as charset allowed)."""
    content_type = response.headers.get("content-type", "")
    expect(
        response.status_code == 200 and content_type.split(";")[0].strip().lower() == "text/event-stream",
        "a streamed chat completion is not a 200 event stream",
        expected="HTTP 200 with Content-Type: text/event-stream",
        received=f"HTTP {response.status_code} with Content-Type: {content_type or '(none)'}",
        response=response,
    )


class SseReader:
    """Iterate the events of a streaming response within a deadline and caps.

    Iteration stops after ``[DONE]`` once the server closes the stream (or ``DONE_GRACE_S`` passes);
    the transcript then says whether anything followed it.
    """

    def __init__(
        self,
        response: httpx.Response,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.response = response
        self.deadline_s = deadline_s
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.transcript = SseTranscript(response=response, started=time.monotonic())

    def _over(self, what: str, limit: str) -> ConformanceFailure:
        t = self.transcript
        return ConformanceFailure(
            f"the event stream did not end within the suite's {what} limit",
            expected=f"a stream that ends with data: [DONE] within {limit}",
            received=f"{len(t.events)} events, {t.bytes_read} bytes in "
            f"{time.monotonic() - t.started:.1f} s, [DONE] {'seen' if t.done_seen else 'not seen'}",
            response=self.response,
        )

    def _lines(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        t = self.transcript
        chunks = self.response.iter_bytes()
        while True:
            try:
                raw = next(chunks)
            except StopIteration:
                break
            except httpx.ReadTimeout:
                if t.done_seen:
                    return  # [DONE] came, then silence: the transcript says the stream was not closed
                raise
            t.bytes_read += len(raw)
            now = time.monotonic()
            if t.bytes_read > self.max_bytes:
                raise self._over("size", f"{self.max_bytes} bytes")
            if t.done_seen:
                if now - t.events[-1].arrived > DONE_GRACE_S:
                    return
            elif now - t.started > self.deadline_s:
                raise self._over("time", f"{self.deadline_s:g} s")
            pending += decoder.decode(raw)
            # SSE lines end in CRLF, LF or CR; keep a trailing CR until we know whether LF follows.
            while True:
                cut = _line_end(pending)
                if cut is None:
                    break
                end, width = cut
                yield pending[:end]
                pending = pending[end + width :]
        pending += decoder.decode(b"", final=True)
        t.closed = True
        if pending:
            yield pending.rstrip("\r")
            t.unterminated = True

    def __iter__(self) -> Iterator[SseEvent]:
        t = self.transcript
        data: list[str] = []
        others: list[str] = []
        for line in self._lines():
            if line == "":
                if data:
                    event = SseEvent("\n".join(data), time.monotonic(), len(data), tuple(others))
                    data, others = [], []
                    if t.done_seen:
                        t.after_done.append(event)
                        continue
                    if len(t.events) >= self.max_events:
                        raise self._over("event count", f"{self.max_events} events")
                    t.events.append(event)
                    if event.is_done:
                        t.done_seen = True
                    yield event
                others = []
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            name, _, value = line.partition(":")
            if not _:
                t.stray_lines.append(line[:200])
                continue
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                others.append(name)
        if data:
            # The stream ended inside an event (no closing blank line): kept, but recorded as such.
            t.unterminated = True
            event = SseEvent("\n".join(data), time.monotonic(), len(data), tuple(others))
            if t.done_seen:
                t.after_done.append(event)
            else:
                t.events.append(event)
                t.done_seen = event.is_done
                yield event


def _line_end(text: str) -> tuple[int, int] | None:
    """Position and width of the first line ending, or None if the text holds no complete line."""
    for index, char in enumerate(text):
        if char == "\n":
            return index, 1
        if char == "\r":
            if index + 1 == len(text):
                return None  # a CR at the end may be the first half of CRLF
            return index, 2 if text[index + 1] == "\n" else 1
    return None


def read_stream(
    response: httpx.Response,
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    max_events: int = DEFAULT_MAX_EVENTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SseTranscript:
    """Read a whole event stream (after checking it is one) and return its transcript."""
    expect_event_stream(response)
    reader = SseReader(response, deadline_s=deadline_s, max_events=max_events, max_bytes=max_bytes)
    for _event in reader:
        pass
    return reader.transcript
