"""Base64url segments of a JWT task token, read without verifying it.

The suite never holds the server's signing key; it only needs to read a token's claims (expiry, tier)
and to build tampered tokens. One home for the padding rule, which every caller otherwise re-derives.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["JWE_SEGMENTS", "JWS_SEGMENTS", "b64url_decode", "b64url_encode", "unverified_claims"]

#: A compact JWS (signed: header.payload.signature) and a compact JWE (encrypted: header.key.iv.
#: ciphertext.tag) by their number of dot-separated segments (RFC 7515, RFC 7516); a JWT is either.
JWS_SEGMENTS = 3
JWE_SEGMENTS = 5


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JWT segments are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    """Decode one unpadded base64url segment."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT as a dict; ValueError when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"not a compact JWT: {len(parts)} segments")
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"JWT payload is not base64url JSON: {exc}") from exc
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not a JSON object")
    return claims
