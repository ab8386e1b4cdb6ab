"""Who is calling: API keys and task tokens, and how an Authorization header becomes a caller.

Two flavours of the same idea (catalogue AUTH-*):

- ``42ai`` (000): the API key (``sk-42ai-...``) is only good for ``POST /api/token``, which trades it
  for a JWT task token that lives 60 seconds; every other call carries the task token.
- ``fortytwo`` (001/002): the API key itself is the bearer credential; there is no exchange.

The keys file holds only the SHA-256 of each key, so the server never keeps a usable credential at
rest, and a caller is known everywhere else by a non-secret ``key_id`` derived from that hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import jwt

from reference_server.config import ServerConfig
from reference_server.errors import ApiError
from reference_server.models import TIERS, Tier

__all__ = [
    "DEMO_EXTRA_KEYS",
    "DEMO_KEYS",
    "JWT_SECRET_ENV",
    "Authenticator",
    "Caller",
    "Flavour",
    "KeyStore",
    "TokenService",
    "key_sha256",
]

Flavour = Literal["42ai", "fortytwo"]
_FLAVOURS: tuple[Flavour, ...] = ("42ai", "fortytwo")

#: Shared HS256 secret when ``ServerConfig.jwt_secret`` is unset: lets several server processes (or a
#: restart) accept each other's tokens. Without either, every start makes its own.
JWT_SECRET_ENV = "CONFORM42_JWT_SECRET"

#: Plaintext of the keys in ``keys/demo_keys.toml``, one per tier. Not secret: for local use and tests.
DEMO_KEYS: dict[Tier, str] = {
    "free": "sk-42ai-demo-free-0000000000000001",
    "pro": "sk-42ai-demo-pro-0000000000000001",
    "internal": "sk-42ai-demo-internal-0000000000000001",
}
#: A second key of the free and pro tiers (labels demo-free-2, demo-pro-2), for tests that need
#: "another key of the same tier" (concurrency is counted per key, not per tier).
DEMO_EXTRA_KEYS: dict[Tier, str] = {
    "free": "sk-42ai-demo-free-0000000000000002",
    "pro": "sk-42ai-demo-pro-0000000000000002",
}

# RFC 7518 3.2: an HS256 key must be at least as long as the hash (32 bytes). pyjwt only warns about
# shorter keys, once per token, so refuse them once, at start.
_MIN_SECRET_BYTES = 32
_KEY_ID_HEX = 16
_ENTRY_FIELDS = ("sha256", "tier", "label")
# RFC 9110 15.5.2: a 401 must say which scheme would be accepted.
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. Safe to log: nothing here is a credential."""

    #: First 16 hex digits of the key's SHA-256: stable across restarts and tokens, so per-key
    #: concurrency counts one key however many task tokens it holds.
    key_id: str
    label: str
    tier: Tier


def key_sha256(api_key: str) -> str:
    """The hex SHA-256 a keys file stores for ``api_key``."""
    # surrogatepass: a header value can hold any code point; an odd one is simply an unknown key.
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "authentication_error", headers=dict(_CHALLENGE))


class KeyStore:
    """The API keys the server accepts, held as SHA-256 digests only."""

    def __init__(self, entries: Iterable[tuple[str, str, str]], *, source: str = "<memory>") -> None:
        """``entries`` are ``(sha256 hex, tier, label)``; errors name ``source`` and the entry."""
        self._entries: list[tuple[bytes, Caller]] = []
        self.source = source
        seen: dict[str, str] = {}
        for number, (digest, tier, label) in enumerate(entries, 1):
            where = f"{source}: [[keys]] entry {number} ({label!r})"
            digest = digest.strip().lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{where}: sha256 must be 64 hex digits (the SHA-256 of the API key)")
            if tier not in TIERS:
                raise ValueError(f"{where}: tier {tier!r} is not one of {', '.join(TIERS)}")
            if not label:
                raise ValueError(f"{where}: label must not be empty")
            key_id = digest[:_KEY_ID_HEX]
            if key_id in seen:
                # Two entries for one key (or, astronomically unlikely, one key_id) would make the
                # tier of that key depend on file order and merge concurrency counts.
                raise ValueError(f"{where}: same key as entry {seen[key_id]}")
            seen[key_id] = f"{number} ({label!r})"
            self._entries.append((digest.encode("ascii"), Caller(key_id, label, tier)))
        if not self._entries:
            raise ValueError(f"{source}: no keys defined (add [[keys]] tables with sha256, tier, label)")

    @classmethod
    def from_file(cls, path: str | Path) -> KeyStore:
        """Load a TOML keys file of ``[[keys]]`` tables with ``sha256``, ``tier`` and ``label``."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<memory>") -> KeyStore:
        """Build from parsed TOML; every shape error names ``source`` and the entry."""
        tables = data.get("keys")
        if not isinstance(tables, list):
            raise ValueError(f"{source}: expected [[keys]] tables with sha256, tier and label")
        entries: list[tuple[str, str, str]] = []
        for number, table in enumerate(tables, 1):
            where = f"{source}: [[keys]] entry {number}"
            if not isinstance(table, dict):
                raise ValueError(f"{where}: expected a table with sha256, tier and label")
            if isinstance(table.get("label"), str):
                where += f" ({table['label']!r})"
            missing = [name for name in _ENTRY_FIELDS if name not in table]
            if missing:
                raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
            # Unknown fields are refused so a typo ("teir") cannot silently fall back to something.
            unknown = sorted(set(table) - set(_ENTRY_FIELDS))
            if unknown:
                raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
            wrong = [name for name in _ENTRY_FIELDS if not isinstance(table[name], str)]
            if wrong:
                raise ValueError(f"{where}: field(s) {', '.join(wrong)} must be strings")
            entries.append((table["sha256"], table["tier"], table["label"]))
        return cls(entries, source=source)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, api_key: str) -> Caller | None:
        """The caller owning ``api_key``, or None."""
        digest = key_sha256(api_key).encode("ascii")
        found: Caller | None = None
        # Constant-time compare against every entry, without stopping at a match: the answer time
        # then depends on neither which entry matched nor how much of a digest did. Key files are
        # small, and the 42ai flavour only looks keys up at POST /api/token.
        for stored, caller in self._entries:
            if hmac.compare_digest(stored, digest):
                found = caller
        return found


class TokenService:
    """Issues and verifies HS256 task tokens (000: "Task tokens expire after 60 seconds")."""

    _ALGORITHM = "HS256"
    _REQUIRED: ClassVar[list[str]] = ["exp", "iat", "sub", "tier", "jti"]

    def __init__(self, secret: str, ttl_s: int = 60, cache_size: int = 4096) -> None:
        """``cache_size``: how many verified tokens are remembered until they expire (see ``verify``)."""
        if len(secret.encode("utf-8")) < _MIN_SECRET_BYTES:
            raise ValueError(
                f"the task-token secret must be at least {_MIN_SECRET_BYTES} bytes (RFC 7518 3.2)"
            )
        if ttl_s < 0:
            raise ValueError("the task-token lifetime must not be negative")
        self._secret = secret
        self.ttl_s = ttl_s
        self._cache_size = max(1, cache_size)
        #: token -> (its caller, its exp): tokens that passed the full check, until they expire.
        self._verified: dict[str, tuple[Caller, int]] = {}

    def issue(self, caller: Caller) -> str:
        # Whole seconds, as pyjwt compares them: iat is rounded down, so a token lives between ttl-1
        # and ttl seconds, never longer than the documented 60. ttl 0 makes a token that is expired
        # at once (pyjwt rejects exp <= now), which tests use instead of sleeping.
        now = int(time.time())
        claims = {
            "sub": caller.key_id,
            "tier": caller.tier,
            "label": caller.label,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=self._ALGORITHM)

    def verify(self, token: str) -> Caller:
        """The caller a valid token names; otherwise 401 saying why, never echoing the token.

        A client presents the same task token on every request of its 60 s life, so a token that
        passed the full check is remembered, keyed by its exact text, until its ``exp``: a repeat costs
        a dict lookup instead of base64, JSON, HMAC and claim checks, which cost most with the CPU caches
        cold from vLLM's work between requests (docs/benchmarks.md). Any other text (tampered,
        re-signed, expired) is not in the cache and takes the full check.
        """
        hit = self._verified.get(token)
        if hit is not None:
            # pyjwt's own rule with leeway 0: a token is expired when exp <= now.
            if time.time() < hit[1]:
                return hit[0]
            self._verified.pop(token, None)  # expired: the full check below says so
        try:
            claims = jwt.decode(
                token,
                self._secret,
                # Only our algorithm: this is what refuses "alg: none" and algorithm swaps.
                algorithms=[self._ALGORITHM],
                options={"require": self._REQUIRED},
                leeway=0,
            )
        # pyjwt's own messages are not passed on: fixed texts cannot leak any part of the token.
        except jwt.ExpiredSignatureError:
            raise _unauthorized(
                "Task token expired: exchange your API key at POST /api/token for a new one"
            ) from None
        except jwt.InvalidAlgorithmError:
            raise _unauthorized("Invalid task token: only HS256-signed tokens are accepted") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("Invalid task token: signature verification failed") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"Invalid task token: missing {exc.claim} claim") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("Invalid task token: issued in the future") from None
        except jwt.DecodeError:
            raise _unauthorized("Invalid task token: not a well-formed JWT") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("Invalid task token: bad claims") from None
        # The signature proves we issued it, but a secret shared across versions (JWT_SECRET_ENV)
        # could still carry claims of another shape: check them rather than trust them.
        sub, tier, label, jti = claims.get("sub"), claims.get("tier"), claims.get("label"), claims.get("jti")
        if tier not in TIERS:
            raise _unauthorized("Invalid task token: unknown tier")
        if not (isinstance(sub, str) and sub and isinstance(label, str) and isinstance(jti, str)):
            raise _unauthorized("Invalid task token: bad claims")
        caller = Caller(key_id=sub, label=label, tier=cast(Tier, tier))
        self._remember(token, caller, int(claims["exp"]))  # pyjwt compares int(exp) too
        return caller

    def _remember(self, token: str, caller: Caller, exp: int) -> None:
        # Called on the event loop only (require_caller is async), so no lock. Full: drop the entry
        # remembered first, which (tokens living 60 s, remembered when first used) is about the oldest.
        if len(self._verified) >= self._cache_size:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (caller, exp)


#: Unicode whitespace, as ``str.isspace`` has it; one regex search instead of a Python call per
#: character of a ~270-character task token on every request.
_WHITESPACE = re.compile(r"\s")


def _bearer(authorization: str | None, what: str) -> str:
    """The credential of ``Bearer <credential>``, or 401; the header value is never echoed."""
    if authorization is None or not authorization.strip():
        raise _unauthorized(f"Missing Authorization header: send 'Authorization: Bearer <{what}>'")
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    # The scheme name is case-insensitive (RFC 9110 11.1); the credential is one token.
    if scheme.lower() != "bearer" or not credential or _WHITESPACE.search(credential):
        raise _unauthorized(f"Malformed Authorization header: expected 'Bearer <{what}>'")
    return credential


@dataclass(frozen=True)
class Authenticator:
    keystore: KeyStore
    tokens: TokenService
    flavour: Flavour = "42ai"

    def __post_init__(self) -> None:
        # The flavour comes from a CLI string; a typo must not pick a default behaviour silently.
        if self.flavour not in _FLAVOURS:
            raise ValueError(f"unknown API flavour {self.flavour!r}: expected one of {', '.join(_FLAVOURS)}")

    @classmethod
    def from_config(cls, config: ServerConfig) -> Authenticator:
        # A per-start secret means tokens die with the process: fine for one server, and nothing
        # secret has to be configured for local use.
        secret = config.jwt_secret or os.environ.get(JWT_SECRET_ENV) or secrets.token_urlsafe(32)
        return cls(
            keystore=KeyStore.from_file(config.keys_file),
            tokens=TokenService(secret, config.token_ttl_s),
            flavour=config.flavour,
        )

    def key_caller(self, authorization: str | None) -> Caller:
        """The caller whose API key is the bearer credential, or 401."""
        caller = self.keystore.lookup(_bearer(authorization, "API key"))
        if caller is None:
            # 002's wording for fortytwo; the same meaning for 42ai's token exchange (AUTH-010).
            raise _unauthorized("Invalid authentication credentials: unknown API key")
        return caller

    def exchange_caller(self, authorization: str | None) -> tuple[Caller, str]:
        """42ai token exchange: the API key's caller and a fresh task token for it.

        Returns the caller too so the route can name it in the access log.
        """
        if self.flavour != "42ai":
            raise ApiError(404, "Not found: token exchange is a 42ai feature", "not_found")
        caller = self.key_caller(authorization)
        return caller, self.tokens.issue(caller)

    def exchange(self, authorization: str | None) -> str:
        """42ai token exchange: a task token for the API key in ``Bearer sk-42ai-...``, or 401."""
        return self.exchange_caller(authorization)[1]

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller of a /v1 request, or 401."""
        if self.flavour == "fortytwo":
            return self.key_caller(authorization)
        token = _bearer(authorization, "task token")
        if token.startswith("sk-"):
            # AUTH-007: the raw key is refused even when valid; say what to do instead. Decided on
            # the prefix alone, so this answer reveals nothing about whether the key exists.
            raise _unauthorized(
                "API keys are not accepted here: "
                "use POST /api/token to exchange your API key for a task token"
            )
        return self.tokens.verify(token)
