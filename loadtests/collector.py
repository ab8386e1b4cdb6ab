"""Everything one load-generating process observed, mergeable across processes (no Locust import).

Each Locust process (local, or every worker) fills one :class:`Collector`; in distributed mode every
worker ships ``to_dict()`` to the master at the end of a run, and the master merges them with
``merge_dict`` before it checks the promises and writes the summary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loadtests.metrics import Histogram, StreamTiming
from loadtests.promises import TIER_LIMITS, Overlap, Violation, find_overlaps

__all__ = ["COMPARED", "Collector", "SeriesStats"]

_HISTS = ("ttft", "itl", "itl_stream", "e2e", "tps", "prompt_tokens", "completion_tokens", "asked_tokens")
#: The per-request values a comparison with a baseline reads (loadtests.compare.METRICS), kept a second
#: time for the requests sent after the run's warm-up.
COMPARED = ("ttft", "itl_stream", "e2e", "tps")
#: Kept examples per violation group; the count is always exact.
_EXAMPLES = 5


@dataclass
class SeriesStats:
    """One tier and model: counters by outcome and the LLM latency histograms."""

    requests: int = 0
    ok: int = 0
    failures: int = 0
    rate_limited: int = 0  # 429
    unavailable: int = 0  # 503
    tokens: int = 0
    usage_mismatch: int = 0
    usage_missing: int = 0
    ttft: Histogram = field(default_factory=Histogram)  # µs
    itl: Histogram = field(default_factory=Histogram)  # µs, one sample per token gap
    #: µs, the mean per-token ITL of each stream: one sample per request, what a comparison of two runs
    #: resamples (the gaps of one stream are not independent of each other).
    itl_stream: Histogram = field(default_factory=Histogram)
    e2e: Histogram = field(default_factory=Histogram)  # µs, successful requests
    tps: Histogram = field(default_factory=Histogram)  # milli-tokens per second, per request
    #: Token counts per successful chat or stream: the prompt and the answer as the server's usage counts
    #: them, and the max_tokens asked (the answer may stop short of it: ``short_answers`` counts those).
    prompt_tokens: Histogram = field(default_factory=Histogram)
    completion_tokens: Histogram = field(default_factory=Histogram)
    asked_tokens: Histogram = field(default_factory=Histogram)
    short_answers: int = 0
    #: COMPARED again, only for the requests sent after the warm-up (``Collector.warmup_until``): the
    #: start of a run (users spawning, first token exchanges and requests) is slower by an amount that
    #: varies from run to run, so a comparison with a baseline leaves it out.
    steady: dict[str, Histogram] = field(default_factory=lambda: {name: Histogram() for name in COMPARED})

    _COUNTERS = (
        "requests",
        "ok",
        "failures",
        "rate_limited",
        "unavailable",
        "tokens",
        "usage_mismatch",
        "usage_missing",
        "short_answers",
    )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in self._COUNTERS}
        data.update({name: getattr(self, name).to_dict() for name in _HISTS})
        data["steady"] = {name: h.to_dict() for name, h in self.steady.items()}
        return data

    def merge_dict(self, data: Mapping[str, Any]) -> None:
        for name in self._COUNTERS:
            setattr(self, name, getattr(self, name) + int(data.get(name, 0)))
        for name in _HISTS:
            if name in data:
                getattr(self, name).merge(Histogram.from_dict(data[name]))
        for name, h in data.get("steady", {}).items():
            self.steady.setdefault(name, Histogram()).merge(Histogram.from_dict(h))


@dataclass
class Collector:
    #: (tier, model) -> stats
    series: dict[tuple[str, str], SeriesStats] = field(default_factory=dict)
    #: key id (a hash, never the key) -> (tier, in-flight intervals in wall-clock seconds)
    intervals: dict[str, tuple[str, list[tuple[float, float]]]] = field(default_factory=dict)
    #: (kind, requirement, tier) -> [count, examples]
    violations: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    notices: set[str] = field(default_factory=set)
    token_exchanges: int = 0
    token_retries_401: int = 0
    arrivals: int = 0
    dropped_arrivals: int = 0
    dispatch_delay: Histogram = field(default_factory=Histogram)  # µs
    e2e_from_intended: Histogram = field(default_factory=Histogram)  # µs
    #: turn of a session (1 opens it) -> the server's prompt tokens of its successful requests
    turn_prompt_tokens: dict[int, Histogram] = field(default_factory=dict)
    processes: int = 1
    #: perf_counter() before which a request was sent in the warm-up (not in SeriesStats.steady); set at
    #: the test's start, 0 = no warm-up.
    warmup_until: float = 0.0

    # ------------------------------------------------------------------------------------ recording
    def stats(self, tier: str, model: str) -> SeriesStats:
        key = (tier, model)
        found = self.series.get(key)
        if found is None:
            found = self.series[key] = SeriesStats()
        return found

    def _after_warmup(self, seconds_ago: float) -> bool:
        """Whether a request that took ``seconds_ago`` to its end just now was sent after the warm-up."""
        return time.perf_counter() - seconds_ago >= self.warmup_until

    def record_stream(self, tier: str, model: str, timing: StreamTiming) -> None:
        s = self.stats(tier, model)
        s.tokens += timing.tokens
        s.usage_mismatch += timing.mismatch
        s.usage_missing += timing.usage_missing
        steady = s.steady if self._after_warmup(timing.e2e) else {}
        values = {"ttft": timing.ttft, "itl_stream": timing.mean_itl, "tps": timing.tokens_per_s}
        for name, value in values.items():
            if value is not None:
                scaled = value * (1000 if name == "tps" else 1e6)  # tokens/s are kept as milli-tokens/s
                getattr(s, name).add(scaled)
                if steady:
                    steady[name].add(scaled)
        s.itl.extend(timing.itls, 1e6)

    def record_ok(self, tier: str, model: str, ms: float) -> None:
        """A successful request and its end-to-end time."""
        s = self.stats(tier, model)
        s.requests += 1
        s.ok += 1
        s.e2e.add(ms * 1000)
        if self._after_warmup(ms / 1000):
            s.steady["e2e"].add(ms * 1000)

    def record_work(
        self, tier: str, model: str, turn: int, asked: int, prompt_tokens: int | None, completion_tokens: int
    ) -> None:
        """What one successful chat or stream asked (max_tokens) and cost (the server's usage)."""
        s = self.stats(tier, model)
        s.asked_tokens.add(asked)
        s.completion_tokens.add(completion_tokens)
        s.short_answers += completion_tokens < asked
        if prompt_tokens is not None:
            s.prompt_tokens.add(prompt_tokens)
            self.turn_prompt_tokens.setdefault(turn, Histogram()).add(prompt_tokens)

    def record_interval(self, key_id: str, tier: str, lo: float, hi: float) -> None:
        if TIER_LIMITS.get(tier) is None or hi <= lo:
            return  # unlimited tiers cannot be over-admitted; an empty interval overlaps nothing
        self.intervals.setdefault(key_id, (tier, []))[1].append((lo, hi))

    def record_violation(self, violation: Violation) -> None:
        key = (violation.kind, violation.requirement or "", violation.tier)
        entry = self.violations.setdefault(key, [0, []])
        entry[0] += 1
        if len(entry[1]) < _EXAMPLES:
            entry[1].append(violation.message)

    # --------------------------------------------------------------------------------- evaluation
    def overlaps(self) -> dict[str, tuple[str, Overlap]]:
        found: dict[str, tuple[str, Overlap]] = {}
        for key_id, (tier, intervals) in self.intervals.items():
            limit = TIER_LIMITS.get(tier)
            if limit is None:
                continue
            overlap = find_overlaps(intervals, limit)
            if overlap is not None:
                found[key_id] = (tier, overlap)
        return found

    def all_violations(self) -> list[dict[str, Any]]:
        """Recorded violations plus over-admission found by the overlap sweep, grouped with counts."""
        rows = [
            {"kind": kind, "requirement": req or None, "tier": tier, "count": count, "examples": examples}
            for (kind, req, tier), (count, examples) in sorted(self.violations.items())
        ]
        for key_id, (tier, o) in sorted(self.overlaps().items()):
            limit = TIER_LIMITS[tier]
            rows.append(
                {
                    "kind": "over-admission",
                    "requirement": "LIMIT-001" if tier == "free" else "LIMIT-002",
                    "tier": tier,
                    "count": o.episodes,
                    "examples": [
                        f"key {key_id}: up to {o.max_in_flight} successful requests in flight at once "
                        f"(tier limit {limit}), {o.episodes} time(s), {o.seconds_over:.2f} s in total"
                    ],
                }
            )
        return rows

    # ------------------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "series": [[tier, model, s.to_dict()] for (tier, model), s in self.series.items()],
            "intervals": {k: [tier, iv] for k, (tier, iv) in self.intervals.items()},
            "violations": [[k, r, t, c, ex] for (k, r, t), (c, ex) in self.violations.items()],
            "notices": sorted(self.notices),
            "token_exchanges": self.token_exchanges,
            "token_retries_401": self.token_retries_401,
            "arrivals": self.arrivals,
            "dropped_arrivals": self.dropped_arrivals,
            "dispatch_delay": self.dispatch_delay.to_dict(),
            "e2e_from_intended": self.e2e_from_intended.to_dict(),
            "turn_prompt_tokens": {str(turn): h.to_dict() for turn, h in self.turn_prompt_tokens.items()},
        }

    def merge_dict(self, data: Mapping[str, Any]) -> None:
        for tier, model, stats in data.get("series", []):
            self.stats(str(tier), str(model)).merge_dict(stats)
        for key_id, (tier, intervals) in data.get("intervals", {}).items():
            self.intervals.setdefault(str(key_id), (str(tier), []))[1].extend(
                (float(a), float(b)) for a, b in intervals
            )
        for kind, req, tier, count, examples in data.get("violations", []):
            entry = self.violations.setdefault((str(kind), str(req), str(tier)), [0, []])
            entry[0] += int(count)
            entry[1].extend(list(examples)[: max(0, _EXAMPLES - len(entry[1]))])
        self.notices.update(data.get("notices", []))
        self.token_exchanges += int(data.get("token_exchanges", 0))
        self.token_retries_401 += int(data.get("token_retries_401", 0))
        self.arrivals += int(data.get("arrivals", 0))
        self.dropped_arrivals += int(data.get("dropped_arrivals", 0))
        for name in ("dispatch_delay", "e2e_from_intended"):
            if name in data:
                getattr(self, name).merge(Histogram.from_dict(data[name]))
        for turn, h in data.get("turn_prompt_tokens", {}).items():
            self.turn_prompt_tokens.setdefault(int(turn), Histogram()).merge(Histogram.from_dict(h))
