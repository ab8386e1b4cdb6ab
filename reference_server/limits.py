"""Admission control: tier concurrency per API key (429) and KV-cache room (503).

Both answer at once and never queue an interactive request: a caller over its limit learns it
immediately and is told when to come back (``Retry-After``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from reference_server.errors import ApiError
from reference_server.models import TIER_CONCURRENCY, Tier

__all__ = ["ConcurrencyLimiter", "KvBudget", "Reservation", "Slot"]


@dataclass
class Slot:
    """One in-flight request of one key; ``release`` is idempotent so every exit path may call it."""

    _limiter: ConcurrencyLimiter
    key_id: str
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release(self.key_id)


class ConcurrencyLimiter:
    def __init__(self, retry_after_s: int = 5, limits: dict[Tier, int | None] | None = None) -> None:
        self._limits = dict(limits or TIER_CONCURRENCY)
        self._retry_after = str(retry_after_s)
        self._in_flight: dict[str, int] = {}
        # Batch workers run on other threads; a plain lock keeps the counters exact for both.
        self._lock = threading.Lock()

    def in_flight(self, key_id: str) -> int:
        with self._lock:
            return self._in_flight.get(key_id, 0)

    def limit(self, tier: Tier) -> int | None:
        return self._limits[tier]

    def try_acquire(self, key_id: str, tier: Tier) -> Slot:
        """Take a slot or raise 429 with ``Retry-After`` at once."""
        limit = self._limits[tier]
        with self._lock:
            current = self._in_flight.get(key_id, 0)
            if limit is not None and current >= limit:
                raise ApiError(
                    429,
                    f"Too many concurrent requests: the {tier} tier allows {limit} at a time. "
                    f"Retry after {self._retry_after}s",
                    "rate_limit_exceeded",
                    headers={"Retry-After": self._retry_after},
                )
            self._in_flight[key_id] = current + 1
        return Slot(self, key_id)

    def _release(self, key_id: str) -> None:
        with self._lock:
            left = self._in_flight.get(key_id, 0) - 1
            if left > 0:
                self._in_flight[key_id] = left
            else:
                self._in_flight.pop(key_id, None)


@dataclass
class Reservation:
    _budget: KvBudget
    tokens: int
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._budget._release(self.tokens)


class KvBudget:
    """Tokens of KV cache promised to in-flight requests (prompt + max completion) against a capacity."""

    def __init__(self, capacity_tokens: int | None, retry_after_s: int = 30) -> None:
        self.capacity = capacity_tokens
        self._retry_after = str(retry_after_s)
        self._reserved = 0
        self._lock = threading.Lock()

    @property
    def reserved(self) -> int:
        with self._lock:
            return self._reserved

    def reserve(self, tokens: int) -> Reservation:
        """Reserve room or raise 503 with ``Retry-After``; no capacity known means no check."""
        with self._lock:
            if self.capacity is not None and self._reserved + tokens > self.capacity:
                raise ApiError(
                    503,
                    f"Insufficient GPU memory: the request needs {tokens} tokens of KV cache, "
                    f"{self.capacity - self._reserved} of {self.capacity} are free. "
                    f"Retry after {self._retry_after}s",
                    "service_unavailable",
                    headers={"Retry-After": self._retry_after},
                )
            self._reserved += tokens
        return Reservation(self, tokens)

    def _release(self, tokens: int) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - tokens)
