"""Where a user's request outcomes go: Locust's statistics, the harness collector, violations, back-off.

No Locust import: Locust's ``request`` event hook is handed in. Every measurement reaches Locust's own
statistics through ``events.request.fire`` (web UI, --csv, --html, workers); the collector keeps the
harness's own histograms and the in-flight intervals the over-admission check reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from loadtests.failures import RequestFailed, Unanswered
from loadtests.options import HarnessConfig, key_id
from loadtests.promises import Violation, status_violation
from loadtests.runtime import STATE

__all__ = ["Answer", "Outcomes"]


class Answer(Protocol):
    """What a refusal is judged by: the status and the headers (geventhttpclient's response)."""

    @property
    def status_code(self) -> int: ...

    def get(self, key: str, default: str | None = None) -> str | list[str] | None: ...


class Outcomes:
    """The bookkeeping of one user's requests, for its tier and the harness configuration."""

    def __init__(self, tier: str, cfg: HarnessConfig, events: Any) -> None:
        self.tier = tier
        self.cfg = cfg
        self.key_id = key_id(cfg.keys[tier])
        self._events = events
        self._backoff = 0.0

    def take_backoff(self) -> float:
        """The extra wait a 429/503 asked for before the next task (then cleared)."""
        backoff, self._backoff = self._backoff, 0.0
        return backoff

    def fire(
        self, request_type: str, name: str, ms: float, length: int = 0, exc: Exception | None = None
    ) -> None:
        self._events.fire(
            request_type=request_type,
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
        )

    def refused(self, resp: Answer, name: str, what: str, ms: float) -> bool:
        """Book a 429/503/5xx answer; True when the answer was one of those (the caller stops there)."""
        status = resp.status_code
        if status not in (429, 503) and status < 500:
            return False
        retry_after = resp.get("retry-after")
        retry = retry_after if isinstance(retry_after, str) else None
        violation = status_violation(status, retry, self.tier, self.cfg.profile, what)
        if violation is not None:
            STATE.collector.record_violation(violation)
        if status in (429, 503):
            stats = STATE.collector.stats(self.tier, name.split(" ")[1])
            if status == 429:
                stats.rate_limited += 1
            else:
                stats.unavailable += 1
            stats.requests += 1
            self.fire(str(status), name, ms)
            wait = self.cfg.backoff_429
            if self.cfg.honour_retry_after and retry and retry.strip().isdigit():
                wait = float(retry)
            self._backoff = max(self._backoff, wait)
            return True
        return False

    def failed(self, model: str, method: str, name: str, ms: float, exc: Exception) -> None:
        stats = STATE.collector.stats(self.tier, model)
        stats.requests += 1
        stats.failures += 1
        self.fire(method, name, ms, 0, exc)

    def ok(self, model: str, method: str, name: str, ms: float, length: int) -> None:
        STATE.collector.record_ok(self.tier, model, ms)
        self.fire(method, name, ms, length)

    def interval(self, lo_wall: float, hi_wall: float, shrink: float) -> None:
        """A span the request was certainly in flight, for the over-admission check."""
        STATE.collector.record_interval(self.key_id, self.tier, lo_wall + shrink, hi_wall - shrink)

    def dispatched(self, intended: float | None, start: float) -> None:
        """An open-loop request's delay from its intended send time (nothing for closed-loop ones)."""
        if intended is not None:
            delay = start - intended
            STATE.collector.dispatch_delay.add(max(delay, 0.0) * 1e6)
            self.fire("DISPATCH", "open-loop dispatch delay", max(delay, 0.0) * 1000)

    def guard(self, model: str, name: str, method: str, body: Callable[[], None]) -> None:
        """Run one request; transport trouble becomes a failure, a timeout also a never-answered violation."""
        start = time.perf_counter()
        try:
            body()
        except Unanswered as exc:
            STATE.collector.record_violation(Violation("unanswered", None, self.tier, f"{name}: {exc}"))
            self.failed(model, method, name, (time.perf_counter() - start) * 1000, exc)
        except (RequestFailed, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.failed(model, method, name, (time.perf_counter() - start) * 1000, exc)
        except TimeoutError as exc:  # gevent's socket timeout: no answer within --request-timeout
            STATE.collector.record_violation(
                Violation(
                    "unanswered", None, self.tier, f"{name}: no answer within {self.cfg.request_timeout:g} s"
                )
            )
            self.failed(model, method, name, (time.perf_counter() - start) * 1000, exc)
        except OSError as exc:  # refused, reset, closed mid-answer
            self.failed(model, method, name, (time.perf_counter() - start) * 1000, exc)
