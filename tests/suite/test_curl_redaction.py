"""Reproduce lines and free text never carry an API key or a task token."""

from __future__ import annotations

import httpx

from suite.curl import REDACTED_TOKEN, scrub, to_curl

KEYS = {"free": "sk-42ai-free-secret", "pro": "sk-42ai-pro-secret"}
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def test_api_key_in_authorization_becomes_its_variable():
    request = httpx.Request("POST", "http://t/api/token", headers={"Authorization": f"Bearer {KEYS['pro']}"})
    line = to_curl(request, KEYS)
    assert KEYS["pro"] not in line
    # Double quotes, so the shell expands the variable; httpx may lower-case the header name.
    assert '"authorization: bearer $conform42_key_pro"' in line.lower()


def test_task_token_becomes_the_token_variable():
    request = httpx.Request("GET", "http://t/v1/models", headers={"Authorization": f"Bearer {JWT}"})
    line = to_curl(request, KEYS)
    assert JWT not in line and REDACTED_TOKEN in line


def test_key_inside_a_body_is_redacted():
    request = httpx.Request("POST", "http://t/x", json={"note": KEYS["free"]})
    line = to_curl(request, KEYS)
    assert KEYS["free"] not in line and "$CONFORM42_KEY_FREE" in line


def test_scrub_removes_keys_jwts_and_other_bearers_from_free_text():
    text = f"got {KEYS['free']} and {JWT}; header Authorization: Bearer opaque-token-123"
    cleaned = scrub(text, KEYS)
    assert KEYS["free"] not in cleaned and JWT not in cleaned and "opaque-token-123" not in cleaned
    assert "$CONFORM42_KEY_FREE" in cleaned and cleaned.count(REDACTED_TOKEN) == 2


def test_scrub_leaves_variable_names_alone():
    assert scrub("Bearer $CONFORM42_KEY_FREE", KEYS) == "Bearer $CONFORM42_KEY_FREE"
