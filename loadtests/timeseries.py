"""A run over time, for the HTML report: per bucket of wall-clock time (no Locust import).

Requests are counted in the bucket in which they were sent. In-flight per key is the most successful
requests of one key in flight at once within a bucket, from the same intervals the over-admission
check reads (a stream from its first to its last content chunk, shrunk by the tolerance), so a peak
above the tier limit is exactly what that check reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from loadtests.promises import TIER_LIMITS
from loadtests.request_log import RequestRecord
from loadtests.sweep_stats import percentile

__all__ = ["MAX_BUCKETS", "bucket_seconds", "in_flight_peaks", "time_series"]

#: At most this many points per plotted line: 1 s buckets up to 4 minutes, coarser beyond.
MAX_BUCKETS = 240


def bucket_seconds(span: float) -> float:
    return float(max(1, math.ceil(span / MAX_BUCKETS)))


def in_flight_peaks(
    intervals: Sequence[tuple[float, float]], started: float, width: float, buckets: int
) -> list[int]:
    """Per bucket, the most intervals open at once (an end at the same instant as a start comes first)."""
    events = sorted([(lo, 1) for lo, _ in intervals] + [(hi, -1) for _, hi in intervals])
    out: list[int] = []
    cur = j = 0
    for b in range(buckets):
        edge = started + (b + 1) * width
        peak = cur
        while j < len(events) and events[j][0] < edge:
            cur += events[j][1]
            peak = max(peak, cur)
            j += 1
        out.append(peak)
    return out


def time_series(
    records: Sequence[RequestRecord],
    intervals: Mapping[str, tuple[str, Sequence[tuple[float, float]]]],
    started: float,
    ended: float,
) -> dict[str, Any]:
    """Rates per second, TTFT p50/p99 and in-flight peaks per key, per bucket from ``started``."""
    width = bucket_seconds(max(ended - started, 0.0))
    n = max(1, math.ceil((ended - started) / width))
    sent, ok, r429, r503, fail, tokens = ([0] * n for _ in range(6))
    ttfts: list[list[float]] = [[] for _ in range(n)]
    for r in records:
        b = int((r.start - started) // width)
        if not 0 <= b < n or r.outcome == "dropped":
            continue
        sent[b] += 1
        if r.outcome == "ok":
            ok[b] += 1
            tokens[b] += r.tokens
            if r.ttft_ms is not None:
                ttfts[b].append(r.ttft_ms)
        elif r.outcome == "429":
            r429[b] += 1
        elif r.outcome == "503":
            r503[b] += 1
        elif r.outcome == "fail":
            fail[b] += 1
    keys = {
        key_id: {
            "tier": tier,
            "limit": TIER_LIMITS.get(tier),
            "peak": in_flight_peaks(list(iv), started, width, n),
        }
        for key_id, (tier, iv) in sorted(intervals.items())
    }
    return {
        "bucket_seconds": width,
        "t": [round(i * width, 3) for i in range(n)],
        "sent_per_s": [c / width for c in sent],
        "ok_per_s": [c / width for c in ok],
        "tokens_per_s": [c / width for c in tokens],
        "r429_per_s": [c / width for c in r429],
        "r503_per_s": [c / width for c in r503],
        "failures_per_s": [c / width for c in fail],
        "ttft_p50_ms": [percentile(v, 0.5) for v in ttfts],
        "ttft_p99_ms": [percentile(v, 0.99) for v in ttfts],
        "in_flight": keys,
    }
