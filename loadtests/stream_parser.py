"""A streamed chat completion's server-sent events -> what the harness measures. Pure: no Locust, no gevent.

The transport hands over the body line by line, each line with the time its bytes arrived
(``ChatStream.feed_line``); byte chunks as they came off the socket work too (``ChatStream.feed``, then
``ChatStream.end``). Only ``data:`` lines count: comments (keep-alives), ``event:`` and blank lines are
skipped. A chunk with content is a token arrival; ``usage.completion_tokens`` is the server's count.
"""

from __future__ import annotations

import json

from loadtests.failures import RequestFailed
from loadtests.metrics import StreamTiming, stream_timing

__all__ = ["ChatStream", "LineSplitter"]


class LineSplitter:
    """Bytes in, whole lines out (without the ``\\n``): a line cut between two reads waits for its end."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def split(self, data: bytes) -> list[bytes]:
        *lines, self._pending = (self._pending + data).split(b"\n")
        return lines

    def rest(self) -> bytes:
        """The unterminated last line (empty when the data ended with a newline); the buffer is emptied."""
        rest, self._pending = self._pending, b""
        return rest


class ChatStream:
    """What one ``stream: true`` chat completion delivered, event by event."""

    def __init__(self, keep_text: bool = False) -> None:
        #: arrival times of the chunks that carried content (the tokens as the client saw them)
        self.content: list[float] = []
        #: the content pieces, kept only when asked for (a multi-turn session resends the reply)
        self.pieces: list[str] | None = [] if keep_text else None
        #: the server's ``usage.completion_tokens`` and ``usage.prompt_tokens``, when a usage chunk came
        self.usage: int | None = None
        self.prompt_tokens: int | None = None
        self.finished = False  # a choice carried a finish_reason
        self.done = False  # ``data: [DONE]`` came
        self.stream_id = ""
        #: bytes of the ``data:`` lines (what Locust shows as the response length)
        self.size = 0
        self._lines = LineSplitter()

    @property
    def complete(self) -> bool:
        """The stream ended as a stream should: a finish_reason or ``[DONE]``."""
        return self.done or self.finished

    def feed(self, data: bytes, now: float) -> None:
        """Bytes that arrived at ``now``: their whole lines are parsed, a cut line waits for the rest."""
        for line in self._lines.split(data):
            self.feed_line(line, now)

    def end(self, now: float) -> None:
        """The body ended: parse an unterminated last line fed through ``feed``."""
        rest = self._lines.rest()
        if rest:
            self.feed_line(rest, now)

    def feed_line(self, line: bytes, now: float) -> None:
        """One line of the body, which arrived at ``now``; an error event raises ``RequestFailed``."""
        if not line.startswith(b"data:"):
            return
        self.size += len(line)
        data = line[5:].strip()
        if data == b"[DONE]":
            self.done = True
            return
        chunk = json.loads(data)
        if "error" in chunk and not chunk.get("choices"):
            raise RequestFailed(f"error event in the stream: {str(chunk['error'])[:200]}")
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            text = delta.get("content") if delta else None
            if text:
                self.content.append(now)
                if self.pieces is not None:
                    self.pieces.append(text)
            if choice.get("finish_reason"):
                self.finished = True
        u = chunk.get("usage")
        if u:
            self.usage = u.get("completion_tokens")
            self.prompt_tokens = u.get("prompt_tokens")
        if not self.stream_id:
            self.stream_id = chunk.get("id", "")

    @property
    def text(self) -> str:
        """The reply as the content pieces put together (empty unless ``keep_text``)."""
        return "".join(self.pieces or ())

    def timing(self, start: float, end: float) -> StreamTiming:
        """TTFT, ITL and tokens/s of this stream, sent at ``start`` and read to its end at ``end``."""
        return stream_timing(start, self.content, end, self.usage)
