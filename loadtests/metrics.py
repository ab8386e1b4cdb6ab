"""LLM latency arithmetic and a mergeable histogram; no Locust import, so tests use it directly.

Definitions (see loadtests/README.md):

* TTFT: first chunk *with content* received minus the start stamp (taken just before the request is
  written). Role-only, finish-only and usage chunks are not tokens.
* Output tokens: the server's ``usage.completion_tokens`` (requested with
  ``stream_options.include_usage``); the content-chunk count is only a cross-check.
* ITL, per token: when every content chunk carries one token (usage == content chunks), the gaps
  between consecutive content chunks; otherwise the mean gap ``(last - first) / (tokens - 1)`` once
  per token, because which chunk carried how many tokens is unknown.
* Output tokens/s: output tokens divided by end-to-end latency of the request.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Histogram", "StreamTiming", "stream_timing"]


def _bucket(value_us: float) -> int:
    """Exact below 1 ms, else three significant digits: fine enough for sub-ms ITL, bounded in size."""
    v = round(value_us)
    if v < 1000:
        return max(v, 0)
    digits = len(str(v)) - 3
    step = 10**digits
    return int((v + step // 2) // step * step)


class Histogram:
    """Counts of values in microseconds (bucketed as above); mergeable and JSON-friendly."""

    __slots__ = ("counts", "n", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.total = 0.0

    def add(self, value_us: float, count: int = 1) -> None:
        key = _bucket(value_us)
        self.counts[key] = self.counts.get(key, 0) + count
        self.n += count
        self.total += value_us * count

    def extend(self, values: Iterable[float], scale: float = 1.0) -> None:
        """Add ``value * scale`` for each value: the per-token hot path, so the loop is inlined."""
        counts = self.counts
        n, total = 0, 0.0
        for v in values:
            us = v * scale
            key = round(us)
            if key >= 1000:
                key = _bucket(us)
            elif key < 0:
                key = 0
            counts[key] = counts.get(key, 0) + 1
            n += 1
            total += us
        self.n += n
        self.total += total

    def merge(self, other: Histogram) -> None:
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.n += other.n
        self.total += other.total

    def percentile(self, q: float) -> float | None:
        """The smallest bucket value with at least ``q`` (0..1) of the samples at or below it."""
        if self.n == 0:
            return None
        rank = max(1, int(-(-q * self.n // 1)))  # ceil(q * n), at least the first sample
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return float(key)
        return float(max(self.counts))

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def to_dict(self) -> dict[str, object]:
        return {"counts": {str(k): c for k, c in self.counts.items()}, "n": self.n, "total": self.total}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        h = cls()
        counts = data.get("counts", {})
        assert isinstance(counts, Mapping)
        h.counts = {int(k): int(v) for k, v in counts.items()}
        n, total = data.get("n", 0), data.get("total", 0.0)
        assert isinstance(n, int) and isinstance(total, int | float)
        h.n, h.total = n, float(total)
        return h


@dataclass(frozen=True)
class StreamTiming:
    """What one stream yields for the metrics, all times in seconds."""

    ttft: float | None
    e2e: float
    tokens: int
    content_chunks: int
    itls: tuple[float, ...]
    #: True when usage and the content-chunk count disagree (reported, usage wins).
    mismatch: bool
    usage_missing: bool

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.e2e if self.e2e > 0 and self.tokens else None

    @property
    def mean_itl(self) -> float | None:
        return sum(self.itls) / len(self.itls) if self.itls else None


def stream_timing(
    start: float, content_times: Sequence[float], end: float, usage_tokens: int | None
) -> StreamTiming:
    """Derive TTFT, per-token ITL and token counts from the receive times of content chunks."""
    chunks = len(content_times)
    tokens = usage_tokens if usage_tokens is not None else chunks
    ttft = content_times[0] - start if chunks else None
    itls: tuple[float, ...] = ()
    if chunks >= 2 and tokens == chunks:
        itls = tuple(b - a for a, b in itertools.pairwise(content_times))
    elif chunks >= 2 and tokens >= 2:
        mean = (content_times[-1] - content_times[0]) / (tokens - 1)
        itls = (mean,) * (tokens - 1)
    return StreamTiming(
        ttft=ttft,
        e2e=end - start,
        tokens=tokens,
        content_chunks=chunks,
        itls=itls,
        mismatch=usage_tokens is not None and usage_tokens != chunks,
        usage_missing=usage_tokens is None,
    )
