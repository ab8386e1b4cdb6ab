"""Whether the target still answers: a hung endpoint is judged by the tests that met it, not waited out by
every test after them.

A request that got no answer at all (no status line within its deadline, or a refused connection) is a
*strike* against its endpoint (method and path, with IDs folded: ``GET /v1/batch/{id}``). The deadline a
strike waited out already follows the target's measured speed (``suite.pace``), so a slow target does not
strike where a fast one would: a strike means "nothing within the time this work should take, and a
margin". ``STRIKES`` strikes in a row, from at least ``TESTS`` different tests, with no answer from that
endpoint in between, and the endpoint has *stopped answering*; the same count over every endpoint at
once (no answer from anywhere in between) and the whole target has. Any answer, whatever its status,
resets the count: a target that answers now and then never trips it.

From then on a request to a stopped endpoint raises ``TargetStopped`` at once, an *Error* of the test
that sent it (nothing was judged), instead of waiting out its own deadline. The tests that met the
hangs keep their outcome (a timeout is a Fail: ``suite.http``), and the run's summary names what stopped
and after what (``stopped()``).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import httpx

from suite.checks import TargetUnreachable

__all__ = ["STRIKES", "TESTS", "Liveness", "TargetStopped", "endpoint"]

#: Requests in a row without an answer before an endpoint (or the target) counts as stopped ...
STRIKES = 3
#: ... sent by at least this many tests (one test's burst of hung requests is one test's evidence).
TESTS = 2
#: The key of "every endpoint": the whole target.
TARGET = "the target"

# A path segment that names one resource rather than a route: digits, or a long opaque token.
_ID_SEGMENT = re.compile(r"^(?=.*\d)[A-Za-z0-9._~-]+$|^[A-Za-z0-9_-]{20,}$")


class TargetStopped(TargetUnreachable):
    """A request was not sent: its endpoint (or the whole target) stopped answering earlier in the run
    (an *Error* of the test, like an unreachable target)."""


def endpoint(method: str, url: httpx.URL | str) -> str:
    """``POST /v1/chat/completions``; resource IDs folded (``GET /v1/batch/{id}``)."""
    path = httpx.URL(str(url)).path
    parts = [p if not _ID_SEGMENT.match(p) or i < 2 else "{id}" for i, p in enumerate(path.split("/"))]
    return f"{method.upper()} {'/'.join(parts) or '/'}"


@dataclass
class _Streak:
    """Requests without an answer since the last answer."""

    strikes: int = 0
    tests: set[str] = field(default_factory=set)
    first_at: float = 0.0
    last_reason: str = ""
    #: Set once the streak reached the threshold: why the endpoint counts as stopped.
    stopped: str | None = None


class Liveness:
    """Strikes and answers per endpoint and for the whole target; thread-safe (bursts share it)."""

    def __init__(self, *, strikes: int = STRIKES, tests: int = TESTS) -> None:
        self.strikes_needed = strikes
        self.tests_needed = tests
        self._lock = threading.Lock()
        self._streaks: dict[str, _Streak] = {}
        #: The test sending requests now (set per test by the plugin); strikes remember it.
        self.current_test = ""

    def check(self, key: str) -> None:
        """Raise ``TargetStopped`` if ``key``'s endpoint or the whole target stopped answering."""
        with self._lock:
            for name in (key, TARGET):
                streak = self._streaks.get(name)
                if streak is not None and streak.stopped is not None:
                    raise TargetStopped(streak.stopped)

    def answered(self, key: str) -> None:
        """An answer (any status) came from ``key``: its streak and the target's end."""
        with self._lock:
            for name in (key, TARGET):
                streak = self._streaks.get(name)
                if streak is not None and streak.stopped is None:
                    del self._streaks[name]

    def struck(self, key: str, reason: str) -> None:
        """A request to ``key`` got no answer (``reason``: the timeout or the refusal)."""
        now = time.monotonic()
        with self._lock:
            for name in (key, TARGET):
                streak = self._streaks.setdefault(name, _Streak(first_at=now))
                if streak.stopped is not None:
                    continue
                streak.strikes += 1
                streak.tests.add(self.current_test)
                streak.last_reason = reason
                if streak.strikes >= self.strikes_needed and len(streak.tests) >= self.tests_needed:
                    what = key if name == key else "the target (every endpoint)"
                    streak.stopped = (
                        f"{what} stopped answering: {streak.strikes} requests in a row from "
                        f"{len(streak.tests)} tests got no answer over {now - streak.first_at:.0f} s "
                        f"(last: {reason}); not sent again in this run"
                    )

    def stopped(self) -> list[str]:
        """Why each stopped endpoint (or the target) counts as stopped, for the run's summary."""
        with self._lock:
            return [s.stopped for s in self._streaks.values() if s.stopped is not None]
