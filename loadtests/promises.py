"""The promises checked under load, as pure functions over observations (no Locust import).

A broken promise is a :class:`Violation`: a kind, the requirement ID of the catalogue where one
exists, the tier and a message. Checked:

* ``over-admission`` (LIMIT-001/002): more successful requests of one key in flight at once than its
  tier allows, seen from the client. A request counts as in flight over an interval that the server
  certainly held its slot for: for a stream, from its first to its last content chunk; otherwise from
  send to receipt, shrunk by the tolerance at both ends. Overlaps shorter than the tolerance are
  ignored, so delivery jitter cannot fake one. Clocks: every process stamps with the wall clock, so
  distributed workers on several machines need synchronised clocks (NTP) well inside the tolerance.
* ``429-retry-after`` (LIMIT-004, fortytwo LIMIT-005), ``503-retry-after`` (LIMIT-011),
  ``429-unlimited-tier`` (LIMIT-003), ``server-error`` (a 5xx other than 503), ``unanswered`` (a request
  that got no complete answer within the request timeout), ``batch-mismatch`` (BATCH-008/009).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

__all__ = [
    "TIER_LIMITS",
    "Overlap",
    "Violation",
    "batch_violation",
    "find_overlaps",
    "status_violation",
]

#: Documented concurrency per API key (000, "Rate Limits"); None is unlimited.
TIER_LIMITS: Mapping[str, int | None] = {"free": 1, "pro": 3, "internal": None}


@dataclass(frozen=True)
class Violation:
    kind: str
    requirement: str | None
    tier: str
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, str | None]) -> Violation:
        return cls(str(data["kind"]), data.get("requirement"), str(data["tier"]), str(data["message"]))

    def line(self) -> str:
        req = f" {self.requirement}" if self.requirement else ""
        return f"VIOLATION{req} [{self.kind}] {self.tier}: {self.message}"


@dataclass(frozen=True)
class Overlap:
    """Where more requests of one key were in flight than allowed."""

    max_in_flight: int
    #: Total seconds during which the count was above the limit.
    seconds_over: float
    #: How many separate stretches of time were above the limit.
    episodes: int
    first_at: float


def find_overlaps(intervals: Iterable[tuple[float, float]], limit: int) -> Overlap | None:
    """Sweep the (already shrunk) in-flight intervals of one key; None when the limit always held."""
    events: list[tuple[float, int]] = []
    for lo, hi in intervals:
        if hi > lo:
            # Ends sort before starts at the same instant: touching intervals do not overlap.
            events.append((lo, 1))
            events.append((hi, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    depth = peak = episodes = 0
    over_since: float | None = None
    first_at: float | None = None
    seconds = 0.0
    for at, step in events:
        depth += step
        if depth > limit and over_since is None:
            over_since = at
            episodes += 1
            first_at = at if first_at is None else first_at
        elif depth <= limit and over_since is not None:
            seconds += at - over_since
            over_since = None
        peak = max(peak, depth)
    if first_at is None:
        return None
    return Overlap(max_in_flight=peak, seconds_over=seconds, episodes=episodes, first_at=first_at)


def status_violation(
    status: int, retry_after: str | None, tier: str, profile: str, what: str
) -> Violation | None:
    """The promise a single answer breaks by its status and Retry-After, if any."""
    if status == 429:
        if TIER_LIMITS.get(tier, 0) is None:
            return Violation(
                "429-unlimited-tier",
                "LIMIT-003",
                tier,
                f"{what}: 429 for the {tier} tier, which has no concurrency limit",
            )
        if profile == "fortytwo":
            if retry_after is None:
                return Violation("429-retry-after", "LIMIT-005", tier, f"{what}: 429 without Retry-After")
        elif retry_after is None or retry_after.strip() != "5":
            got = f"Retry-After: {retry_after}" if retry_after is not None else "no Retry-After"
            return Violation(
                "429-retry-after", "LIMIT-004", tier, f"{what}: 429 with {got}, expected Retry-After: 5"
            )
    elif status == 503:
        if retry_after is None or retry_after.strip() != "30":
            got = f"Retry-After: {retry_after}" if retry_after is not None else "no Retry-After"
            return Violation(
                "503-retry-after", "LIMIT-011", tier, f"{what}: 503 with {got}, expected Retry-After: 30"
            )
    elif status >= 500:
        return Violation("server-error", None, tier, f"{what}: HTTP {status} (only 503 is a documented 5xx)")
    return None


def batch_violation(task_ids: Iterable[str], body: Mapping[str, object], tier: str) -> Violation | None:
    """A completed batch must hold one result per task (BATCH-008) and completed == total (BATCH-009)."""
    wanted = sorted(task_ids)
    results = body.get("results")
    if not isinstance(results, Mapping):
        return Violation("batch-mismatch", "BATCH-008", tier, "completed batch without a results object")
    got = sorted(str(k) for k in results)
    if got != wanted:
        missing = sorted(set(wanted) - set(got))
        extra = sorted(set(got) - set(wanted))
        return Violation(
            "batch-mismatch",
            "BATCH-008",
            tier,
            f"batch results do not match its tasks (missing {missing}, unexpected {extra})",
        )
    bad = [
        k for k, v in results.items() if not (isinstance(v, Mapping) and isinstance(v.get("content"), str))
    ]
    if bad:
        return Violation(
            "batch-mismatch", "BATCH-008", tier, f"batch results without string content: {sorted(bad)}"
        )
    if body.get("completed") != body.get("total") or body.get("total") != len(wanted):
        return Violation(
            "batch-mismatch",
            "BATCH-009",
            tier,
            f"completed batch with completed={body.get('completed')!r}, total={body.get('total')!r}, "
            f"{len(wanted)} tasks submitted",
        )
    return None
