"""loadtests.tokens: one task token per key, reused until shortly before expiry, replaced once on a 401."""

from __future__ import annotations

import json
import threading

from loadtests.tokens import DEFAULT_LIFETIME_S, Tokens, refresh_at, token_lifetime
from suite.token_segments import b64url_encode


def _jwt(**claims: object) -> str:
    return ".".join((b64url_encode(b'{"alg":"HS256"}'), b64url_encode(json.dumps(claims).encode()), "sig"))


class Exchange:
    def __init__(self, lifetime: float = 600.0) -> None:
        self.calls = 0
        self.lifetime = lifetime

    def __call__(self, key: str) -> str:
        self.calls += 1
        return _jwt(sub=key, n=self.calls, iat=1000, exp=1000 + self.lifetime)


def test_lifetime_is_read_from_the_claims():
    assert token_lifetime(_jwt(iat=100, exp=400)) == 300.0
    assert token_lifetime("not-a-jwt") is None
    assert token_lifetime(_jwt(iat=100)) is None


def test_refresh_comes_before_expiry_with_a_margin():
    assert refresh_at(0.0, 60.0) == 59.0 - 10.0  # a 10 s margin at most
    assert refresh_at(0.0, 3.0) == 2.0 - 0.5  # a quarter of a short lifetime
    assert refresh_at(5.0, 0.1) == 5.0 + 0.5 - 0.125  # never below half a second of use


def test_one_exchange_serves_every_caller_of_a_key():
    tokens, exchange = Tokens(threading.Lock), Exchange()
    first = tokens.bearer("k1", exchange)
    assert tokens.bearer("k1", exchange) == first
    assert exchange.calls == 1
    tokens.bearer("k2", exchange)
    assert exchange.calls == 2


def test_a_401_replaces_the_stale_token_once():
    tokens, exchange = Tokens(threading.Lock), Exchange()
    stale = tokens.bearer("k", exchange)
    fresh = tokens.bearer("k", exchange, force=True, stale=stale)
    assert fresh != stale and exchange.calls == 2
    # Another caller that saw the same 401 gets the token already replaced, not a third exchange.
    assert tokens.bearer("k", exchange, force=True, stale=stale) == fresh
    assert exchange.calls == 2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_exchanged_again_shortly_before_it_expires():
    clock, exchange = Clock(), Exchange(lifetime=60.0)
    tokens = Tokens(threading.Lock, clock)
    first = tokens.bearer("k", exchange)
    clock.now = refresh_at(100.0, 60.0) - 0.01
    assert tokens.bearer("k", exchange) == first
    clock.now += 0.02
    assert tokens.bearer("k", exchange) != first and exchange.calls == 2


def test_the_configured_ttl_wins_over_the_claims():
    clock, exchange = Clock(), Exchange(lifetime=600.0)
    tokens = Tokens(threading.Lock, clock)
    tokens.bearer("k", exchange, ttl=3.0)
    clock.now = refresh_at(100.0, 3.0) + 0.01
    tokens.bearer("k", exchange, ttl=3.0)
    assert exchange.calls == 2


def test_an_unreadable_token_lives_the_default_lifetime():
    clock, calls = Clock(), []

    def exchange(key: str) -> str:
        calls.append(key)
        return "opaque"

    tokens = Tokens(threading.Lock, clock)
    tokens.bearer("k", exchange)
    clock.now = refresh_at(100.0, DEFAULT_LIFETIME_S) - 0.01
    assert tokens.bearer("k", exchange) == "opaque"
    assert len(calls) == 1


def test_reset_forgets_every_token():
    tokens, exchange = Tokens(threading.Lock), Exchange()
    tokens.bearer("k", exchange)
    tokens.reset()
    tokens.bearer("k", exchange)
    assert exchange.calls == 2
