"""One record per request, assembled from the request events the users fire (no Locust import).

The capacity sweep and the HTML report's time series need each request's start time and its figures
together (goodput asks whether *one* request met every SLO), which the collector's histograms do not
keep. Every measurement already reaches Locust's ``request`` event (``loadtests.outcomes``), one event
per figure, fired back to back in the user's greenlet without yielding in between:

* a stream: ``POST`` (end-to-end) then ``TTFT``, ``ITL`` and ``TOK/S`` (its length: output tokens),
  each only when there is something to report;
* a chat: ``TOK/S`` then ``POST``; embeddings, batches, pipelines: ``POST``;
* a refusal: ``429`` / ``503``; a failure: ``POST``/``GET`` with an exception.

So the events of one request are joined per greenlet (``who``). Names are ``<tier> <model> <kind>``.
Start times are wall-clock seconds (the event time less the end-to-end latency), so records of several
processes can be merged and cut into sweep steps on the master.

A request fires its events only when it ends, so the log is also told when one is sent and when it
has settled (``sent`` / ``settled`` / ``abandon``, from the users' ``run_kind``): a request still in flight
when the run ends becomes an ``unfinished`` record instead of vanishing from the step it was sent in.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

__all__ = ["OUTCOMES", "RequestLog", "RequestRecord"]

#: ok, refused (429, 503), failed (an exception, an error status, no answer), still in flight when
#: the run ended (unfinished), or an open-loop arrival the client dropped, never sent (dropped).
OUTCOMES = ("ok", "429", "503", "fail", "unfinished", "dropped")
_FIGURES = ("TTFT", "ITL", "TOK/S")
_IGNORED_KINDS = ("batch-poll",)


def _tier_kind(name: str) -> tuple[str, str] | None:
    """The tier and kind of a request named ``<tier> <model> <kind>``; None for the other names
    (task-token exchanges, dispatch delays, batch polls: not requests of their own)."""
    parts = name.split(" ")
    if len(parts) != 3 or parts[2] in _IGNORED_KINDS:
        return None
    return parts[0], parts[2]


@dataclass
class RequestRecord:
    tier: str
    kind: str
    #: wall-clock seconds when the request was sent
    start: float
    outcome: str
    e2e_ms: float | None = None
    ttft_ms: float | None = None
    itl_ms: float | None = None
    tokens: int = 0

    @property
    def end(self) -> float:
        return self.start + (self.e2e_ms or 0.0) / 1000

    def to_list(self) -> list[Any]:
        return list(astuple(self))

    @classmethod
    def from_list(cls, row: list[Any]) -> RequestRecord:
        tier, kind, start, outcome, e2e, ttft, itl, tokens = row
        return cls(str(tier), str(kind), float(start), str(outcome), e2e, ttft, itl, int(tokens))


@dataclass
class RequestLog:
    records: list[RequestRecord] = field(default_factory=list)
    #: a stream whose POST arrived and whose figures may still follow, per greenlet
    _open: dict[Hashable, tuple[str, RequestRecord]] = field(default_factory=dict)
    #: output tokens of a chat whose POST is still to come, per greenlet
    _chat_tokens: dict[Hashable, int] = field(default_factory=dict)
    #: requests sent and not settled yet, per greenlet: (name, wall-clock send time)
    _pending: dict[Hashable, tuple[str, float]] = field(default_factory=dict)

    def sent(self, who: Hashable, name: str, now: float) -> None:
        """Greenlet ``who`` sends request ``name`` at wall-clock ``now``."""
        self._pending[who] = (name, now)

    def abandon(self, who: Hashable) -> None:
        """Greenlet ``who`` was killed mid-request (the run ended, or Locust stopped its user): the
        request is recorded as unfinished at once, so nothing waits for it."""
        found = self._pending.pop(who, None)
        if found is not None:
            self._unfinished(*found)

    def _unfinished(self, name: str, start: float) -> None:
        found = _tier_kind(name)
        if found is not None:
            self.records.append(RequestRecord(*found, start, "unfinished"))

    def settled(self, who: Hashable) -> None:
        """Greenlet ``who``'s request is over: its events, if any, have been fired."""
        self._pending.pop(who, None)

    def dropped(self, tier: str, kind: str, now: float) -> None:
        """An open-loop arrival at wall-clock ``now`` that the client dropped (too many in flight)."""
        self.records.append(RequestRecord(tier, kind, now, "dropped"))

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def event(
        self, who: Hashable, request_type: str, name: str, ms: float, length: int, failed: bool, now: float
    ) -> None:
        """One Locust request event of greenlet ``who`` at wall-clock ``now``."""
        found = _tier_kind(name)
        if found is None:
            return
        tier, kind = found
        if request_type in _FIGURES:
            self._figure(who, request_type, name, kind, ms, length)
            return
        if request_type not in ("POST", "GET", "429", "503"):
            return
        self._close(who)
        start = now - ms / 1000
        if request_type in ("429", "503"):
            self.records.append(RequestRecord(tier, kind, start, request_type))
            return
        if failed:
            self.records.append(RequestRecord(tier, kind, start, "fail", ms))
            return
        record = RequestRecord(tier, kind, start, "ok", ms, tokens=self._chat_tokens.pop(who, 0))
        if kind == "stream":
            self._open[who] = (name, record)
        else:
            self.records.append(record)

    def _figure(self, who: Hashable, request_type: str, name: str, kind: str, ms: float, length: int) -> None:
        if kind == "chat" and request_type == "TOK/S":
            self._chat_tokens[who] = length
            return
        found = self._open.get(who)
        if found is None or found[0] != name:
            return
        record = found[1]
        if request_type == "TTFT":
            record.ttft_ms = ms
        elif request_type == "ITL":
            record.itl_ms = ms
        else:  # TOK/S is a stream's last figure
            record.tokens = length
            self._close(who)

    def _close(self, who: Hashable) -> None:
        found = self._open.pop(who, None)
        if found is not None:
            self.records.append(found[1])

    def flush(self) -> None:
        """The run is over: take in the streams still waiting for figures (none will come) and the
        requests still in flight, as unfinished."""
        for who in list(self._open):
            self._close(who)
        self._chat_tokens.clear()
        for name, start in self._pending.values():
            self._unfinished(name, start)
        self._pending.clear()

    def to_dict(self) -> dict[str, Any]:
        self.flush()
        return {"records": [r.to_list() for r in self.records]}

    def merge_dict(self, data: Mapping[str, Any]) -> None:
        self.records.extend(RequestRecord.from_list(list(row)) for row in data.get("records", []))
