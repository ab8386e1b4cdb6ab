"""Task tokens: one per API key in a process, refreshed before expiry and once more on a 401. Pure.

The lock that lets one exchange per key run at a time is passed in (a gevent ``Semaphore`` under
Locust), so the cache itself is tested without gevent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from suite.token_segments import unverified_claims

__all__ = ["DEFAULT_LIFETIME_S", "Tokens", "refresh_at", "token_lifetime"]

#: Assumed when the token's own claims do not tell.
DEFAULT_LIFETIME_S = 60.0


def token_lifetime(token: str) -> float | None:
    """exp - iat of a JWT, read without verifying it (the server does that); None if unreadable."""
    try:
        claims = unverified_claims(token)
        return float(claims["exp"]) - float(claims["iat"])
    except (ValueError, KeyError, TypeError):
        return None


def refresh_at(issued: float, lifetime: float) -> float:
    """When a token obtained at ``issued`` (monotonic clock) is replaced by a fresh one."""
    # iat is whole seconds (rounded down), so the token may die up to 1 s early; keep a margin too.
    usable = max(lifetime - 1.0, 0.5)
    return issued + usable - min(10.0, usable * 0.25)


class Tokens:
    """The current task token per API key, exchanged through the caller's ``exchange``."""

    def __init__(
        self, lock: Callable[[], AbstractContextManager[Any]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._new_lock = lock
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, AbstractContextManager[Any]] = {}

    def reset(self) -> None:
        self._tokens.clear()

    def bearer(
        self,
        key: str,
        exchange: Callable[[str], str],
        ttl: float | None = None,
        force: bool = False,
        stale: str | None = None,
    ) -> str:
        """The token for ``key``; ``force`` replaces ``stale`` unless another caller already did.

        ``ttl`` overrides the lifetime the token's claims state.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks.setdefault(key, self._new_lock())
        with lock:  # one exchange per key at a time: the others wait and reuse it
            cached = self._tokens.get(key)
            now = self._clock()
            if cached and not (force and cached[0] == stale) and now < cached[1]:
                return cached[0]
            token = exchange(key)
            lifetime = ttl or token_lifetime(token) or DEFAULT_LIFETIME_S
            self._tokens[key] = (token, refresh_at(now, lifetime))
            return token
