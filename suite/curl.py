"""A curl command that reproduces a request, with secrets replaced by environment variable names.

Reports are shared (CI logs, tickets), so API keys and task tokens never appear in them: a key becomes
``$CONFORM42_KEY_<TIER>`` and any other bearer credential ``$CONFORM42_TASK_TOKEN``, which the reader
sets before pasting the line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

import httpx

__all__ = ["REDACTED_TOKEN", "redact", "scrub", "to_curl"]

REDACTED_TOKEN = "$CONFORM42_TASK_TOKEN"
_BODY_LIMIT = 4000
# Headers httpx adds by itself; curl sets its own equivalents.
_IMPLICIT = {"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"}


def redact(text: str, keys: Mapping[str, str]) -> str:
    """Replace every API key of ``keys`` (tier -> key) in ``text`` with its variable name."""
    for tier, key in keys.items():
        if key:
            text = text.replace(key, f"$CONFORM42_KEY_{tier.upper()}")
    return text


# A compact JWT (what a task token is): header and payload are base64url JSON objects, so they start "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(Bearer\s+)(?!\$CONFORM42_)[^\s\"',}]+", re.IGNORECASE)


def scrub(text: str, keys: Mapping[str, str]) -> str:
    """``redact`` plus task tokens: any JWT or other bearer credential becomes ``$CONFORM42_TASK_TOKEN``.

    For free text (failure messages, response excerpts) where a secret may appear anywhere.
    """
    text = _JWT.sub(REDACTED_TOKEN, redact(text, keys))
    return _BEARER.sub(lambda m: m.group(1) + REDACTED_TOKEN, text)


def _auth_value(value: str, keys: Mapping[str, str]) -> str:
    scheme, _, credential = value.partition(" ")
    if not credential:
        return value
    for tier, key in keys.items():
        if key and credential == key:
            return f"{scheme} $CONFORM42_KEY_{tier.upper()}"
    return f"{scheme} {REDACTED_TOKEN}"


def to_curl(request: httpx.Request, keys: Mapping[str, str] | None = None) -> str:
    """Render ``request`` as a one-line curl command (double quotes where a variable must expand)."""
    keys = keys or {}
    parts = ["curl", "-sS", "-i", "-X", request.method, shlex.quote(str(request.url))]
    for name, value in request.headers.items():
        if name.lower() in _IMPLICIT:
            continue
        if name.lower() == "authorization":
            # Double quotes so the shell expands the variable that stands for the secret.
            parts += ["-H", f'"{name}: {_auth_value(value, keys)}"']
        else:
            parts += ["-H", shlex.quote(f"{name}: {redact(value, keys)}")]
    try:
        body = request.content
    except httpx.RequestNotRead:
        body = b""
    if body:
        text = body.decode("utf-8", errors="replace")
        if len(text) > _BODY_LIMIT:
            text = text[:_BODY_LIMIT] + "...(truncated)"
        parts += ["--data-raw", shlex.quote(redact(text, keys))]
    return " ".join(parts)
