"""Task tokens and the Authenticator: directly, and over HTTP through a small app of our own.

The app here includes only the token and health routers plus one protected route, so these tests do
not depend on the chat/embedding routes. Every JWT attack of the catalogue (AUTH-005..010) has its own
test; expiry is produced with ttl 0 or crafted claims, never by waiting.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI

from reference_server.auth import (
    DEMO_EXTRA_KEYS,
    DEMO_KEYS,
    JWT_SECRET_ENV,
    Authenticator,
    Caller,
    KeyStore,
    TokenService,
)
from reference_server.config import DEMO_KEYS_FILE, ServerConfig
from reference_server.errors import ApiError, install_error_handlers
from reference_server.gateway import get_gateway, require_caller
from reference_server.routes import health, token
from suite.token_segments import b64url_decode, unverified_claims

# 64 bytes: long enough for HS512 too, so the algorithm-swap test raises no key-length warning.
SECRET = "test-secret-" + "0123456789abcdef" * 4
OTHER_SECRET = "another-secret-0123456789abcdef-0123456789ab"
UNKNOWN_KEY = "sk-42ai-not-a-real-key-000000000000"


# ---- helpers ----------------------------------------------------------------------------------------


@dataclass
class _Engine:
    name: str


@dataclass
class _Gateway:
    auth: Authenticator
    chat: _Engine = field(default_factory=lambda: _Engine("sim-chat"))
    embed: _Engine = field(default_factory=lambda: _Engine("sim-embed"))


def make_auth(flavour: Any = "42ai", secret: str = SECRET, ttl_s: int = 60) -> Authenticator:
    return Authenticator(KeyStore.from_file(DEMO_KEYS_FILE), TokenService(secret, ttl_s), flavour)


def make_app(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    gateway = _Gateway(auth)
    app.dependency_overrides[get_gateway] = lambda: gateway
    install_error_handlers(app)
    app.include_router(token.router)
    app.include_router(health.router)

    @app.get("/v1/whoami")
    async def whoami(caller: Annotated[Caller, Depends(require_caller)]) -> dict[str, str]:
        return {"key_id": caller.key_id, "label": caller.label, "tier": caller.tier}

    return app


def call(
    app: FastAPI,
    method: str,
    path: str,
    authorization: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request through the ASGI transport (no server, no pytest-asyncio)."""
    headers = dict(headers or {})
    if authorization is not None:
        headers["Authorization"] = authorization

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, path, headers=headers, **kwargs)

    return asyncio.run(go())


def exchange(app: FastAPI, api_key: str) -> str:
    response = call(app, "POST", "/api/token", f"Bearer {api_key}")
    assert response.status_code == 200, response.text
    task_token: str = response.json()["task_token"]
    return task_token


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(task_token: str) -> dict[str, Any]:
    return unverified_claims(task_token)


def assert_401(response: httpx.Response) -> str:
    """401 in the documented envelope, without a token; returns the message."""
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "authentication_error"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "task_token" not in body
    assert response.headers["www-authenticate"] == "Bearer"
    message: str = body["error"]["message"]
    return message


def key_id(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


# ---- token exchange ---------------------------------------------------------------------------------


def test_token_exchange_returns_200_and_a_jwt_living_60_seconds():
    app = make_app(make_auth())
    response = call(
        app, "POST", "/api/token", f"Bearer {DEMO_KEYS['pro']}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task_token"}
    task_token = body["task_token"]
    assert isinstance(task_token, str) and task_token.count(".") == 2
    header = json.loads(b64url_decode(task_token.split(".")[0]))
    assert header["alg"] == "HS256"
    claims = claims_of(task_token)
    assert claims["exp"] - claims["iat"] == 60
    assert claims["sub"] == key_id(DEMO_KEYS["pro"])
    assert claims["tier"] == "pro"
    assert claims["label"] == "demo-pro"
    assert isinstance(claims["jti"], str) and len(claims["jti"]) == 32
    assert abs(claims["iat"] - time.time()) < 5
    # A credential in a response must not be cached on the way (RFC 6749 5.1).
    assert response.headers["cache-control"] == "no-store"


def test_token_exchange_ignores_any_body():
    app = make_app(make_auth())
    for content in (b'{"anything": 1}', b"not json at all", b""):
        response = call(
            app,
            "POST",
            "/api/token",
            f"Bearer {DEMO_KEYS['free']}",
            content=content,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200, content


def test_each_exchange_gives_a_distinct_token_id():
    app = make_app(make_auth())
    first, second = (exchange(app, DEMO_KEYS["free"]) for _ in range(2))
    assert claims_of(first)["jti"] != claims_of(second)["jti"]


def test_task_token_is_accepted_on_a_protected_route():
    app = make_app(make_auth())
    response = call(app, "GET", "/v1/whoami", f"Bearer {exchange(app, DEMO_KEYS['internal'])}")
    assert response.status_code == 200
    assert response.json() == {
        "key_id": key_id(DEMO_KEYS["internal"]),
        "label": "demo-internal",
        "tier": "internal",
    }


def test_bearer_scheme_name_is_case_insensitive():
    app = make_app(make_auth())
    response = call(app, "GET", "/v1/whoami", f"bearer {exchange(app, DEMO_KEYS['free'])}")
    assert response.status_code == 200


def test_unknown_api_key_on_token_exchange_is_401_without_token():
    app = make_app(make_auth())
    assert_401(call(app, "POST", "/api/token", f"Bearer {UNKNOWN_KEY}"))


def test_task_token_cannot_be_exchanged_for_another_token():
    app = make_app(make_auth())
    assert_401(call(app, "POST", "/api/token", f"Bearer {exchange(app, DEMO_KEYS['pro'])}"))


def test_missing_authorization_header_on_token_exchange_is_401():
    app = make_app(make_auth())
    assert "Missing Authorization" in assert_401(call(app, "POST", "/api/token"))


@pytest.mark.parametrize(
    "header",
    ["Basic xyz", "Bearer", "Bearer ", f"Token {DEMO_KEYS['free']}", f"Bearer {DEMO_KEYS['free']} extra"],
)
def test_malformed_authorization_on_token_exchange_is_401(header):
    app = make_app(make_auth())
    message = assert_401(call(app, "POST", "/api/token", header))
    assert DEMO_KEYS["free"] not in message


# ---- protected routes: what is refused --------------------------------------------------------------


def test_missing_authorization_header_on_protected_route_is_401():
    app = make_app(make_auth())
    assert "Missing Authorization" in assert_401(call(app, "GET", "/v1/whoami"))


def test_raw_api_key_on_protected_route_is_401_pointing_to_token_exchange():
    app = make_app(make_auth())
    message = assert_401(call(app, "GET", "/v1/whoami", f"Bearer {DEMO_KEYS['internal']}"))
    assert "POST /api/token" in message
    assert DEMO_KEYS["internal"] not in message


def test_tampered_tier_claim_with_original_signature_is_401():
    app = make_app(make_auth())
    header, payload, signature = exchange(app, DEMO_KEYS["free"]).split(".")
    claims = json.loads(b64url_decode(payload))
    claims["tier"] = "internal"
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    assert "signature" in assert_401(call(app, "GET", "/v1/whoami", f"Bearer {forged}"))


def test_tampered_exp_claim_with_original_signature_is_401():
    app = make_app(make_auth())
    header, payload, signature = exchange(app, DEMO_KEYS["free"]).split(".")
    claims = json.loads(b64url_decode(payload))
    claims["exp"] += 3600
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    assert_401(call(app, "GET", "/v1/whoami", f"Bearer {forged}"))


@pytest.mark.parametrize("keep_signature", [False, True], ids=["empty-signature", "original-signature"])
def test_alg_none_token_with_copied_claims_is_401(keep_signature):
    app = make_app(make_auth())
    _, payload, signature = exchange(app, DEMO_KEYS["pro"]).split(".")
    none_header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    forged = ".".join([none_header, payload, signature if keep_signature else ""])
    assert_401(call(app, "GET", "/v1/whoami", f"Bearer {forged}"))


def test_token_signed_with_another_hmac_algorithm_is_401():
    # Same secret, same claims, HS512: only the algorithm we issue is accepted.
    app = make_app(make_auth())
    claims = claims_of(exchange(app, DEMO_KEYS["pro"]))
    swapped = jwt.encode(claims, SECRET, algorithm="HS512")
    assert "HS256" in assert_401(call(app, "GET", "/v1/whoami", f"Bearer {swapped}"))


def test_token_signed_with_a_wrong_secret_is_401():
    app = make_app(make_auth())
    foreign = TokenService(OTHER_SECRET).issue(Caller(key_id(DEMO_KEYS["pro"]), "demo-pro", "internal"))
    assert "signature" in assert_401(call(app, "GET", "/v1/whoami", f"Bearer {foreign}"))


def test_expired_token_from_zero_ttl_is_401_saying_expired():
    app = make_app(make_auth())
    caller = Caller(key_id(DEMO_KEYS["free"]), "demo-free", "free")
    expired = TokenService(SECRET, ttl_s=0).issue(caller)
    message = assert_401(call(app, "GET", "/v1/whoami", f"Bearer {expired}"))
    assert "expired" in message.lower()
    assert expired not in message


def test_token_issued_61_seconds_ago_is_401_saying_expired():
    app = make_app(make_auth())
    now = int(time.time())
    claims = {
        "sub": key_id(DEMO_KEYS["free"]),
        "tier": "free",
        "label": "demo-free",
        "iat": now - 61,
        "exp": now - 1,
        "jti": "0" * 32,
    }
    crafted = jwt.encode(claims, SECRET, algorithm="HS256")
    assert "expired" in assert_401(call(app, "GET", "/v1/whoami", f"Bearer {crafted}")).lower()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Bearer a.b.c",
        "Bearer ",
        "Bearer",
        "Basic xyz",
        "Bearer e30.e30.",
        "Bearer ....",
        "Bearer a b",
    ],
)
def test_malformed_bearer_on_protected_route_is_401(header):
    app = make_app(make_auth())
    message = assert_401(call(app, "GET", "/v1/whoami", header))
    assert "expired" not in message.lower()


def test_refreshed_token_works_after_the_old_one_expired():
    app = make_app(make_auth())
    caller = Caller(key_id(DEMO_KEYS["pro"]), "demo-pro", "pro")
    expired = TokenService(SECRET, ttl_s=0).issue(caller)
    assert_401(call(app, "GET", "/v1/whoami", f"Bearer {expired}"))
    fresh = exchange(app, DEMO_KEYS["pro"])
    response = call(app, "GET", "/v1/whoami", f"Bearer {fresh}")
    assert response.status_code == 200
    assert response.json()["tier"] == "pro"


def test_tokens_of_two_keys_of_one_tier_name_different_callers():
    app = make_app(make_auth())
    first = call(app, "GET", "/v1/whoami", f"Bearer {exchange(app, DEMO_KEYS['free'])}").json()
    second = call(app, "GET", "/v1/whoami", f"Bearer {exchange(app, DEMO_EXTRA_KEYS['free'])}").json()
    assert first["tier"] == second["tier"] == "free"
    assert first["key_id"] != second["key_id"]
    assert second["label"] == "demo-free-2"


def test_health_needs_no_authentication():
    app = make_app(make_auth())
    response = call(app, "GET", "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "engines": {"chat": "sim-chat", "embed": "sim-embed"}}


# ---- fortytwo flavour -------------------------------------------------------------------------------


def test_fortytwo_flavour_accepts_the_api_key_as_bearer():
    app = make_app(make_auth("fortytwo"))
    response = call(app, "GET", "/v1/whoami", f"Bearer {DEMO_KEYS['pro']}")
    assert response.status_code == 200
    assert response.json()["label"] == "demo-pro"


def test_fortytwo_flavour_rejects_an_unknown_api_key():
    app = make_app(make_auth("fortytwo"))
    assert_401(call(app, "GET", "/v1/whoami", f"Bearer {UNKNOWN_KEY}"))


def test_fortytwo_flavour_rejects_a_missing_key():
    app = make_app(make_auth("fortytwo"))
    assert_401(call(app, "GET", "/v1/whoami"))


def test_fortytwo_flavour_rejects_a_task_token():
    token_42ai = make_auth().exchange(f"Bearer {DEMO_KEYS['pro']}")
    app = make_app(make_auth("fortytwo"))
    assert_401(call(app, "GET", "/v1/whoami", f"Bearer {token_42ai}"))


def test_fortytwo_flavour_token_exchange_is_404():
    app = make_app(make_auth("fortytwo"))
    response = call(app, "POST", "/api/token", f"Bearer {DEMO_KEYS['pro']}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert "42ai" in response.json()["error"]["message"]


# ---- TokenService and Authenticator directly --------------------------------------------------------


def _status_and_message(fn: Any, *args: Any) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as info:
        fn(*args)
    return info.value.status, info.value.error_type, info.value.message


def test_token_service_round_trip_keeps_the_caller():
    service = TokenService(SECRET)
    caller = Caller("0123456789abcdef", "someone", "pro")
    assert service.verify(service.issue(caller)) == caller


def test_token_service_refuses_secrets_shorter_than_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        TokenService("short")


def test_token_service_refuses_a_negative_lifetime():
    with pytest.raises(ValueError):
        TokenService(SECRET, ttl_s=-1)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "tier", "jti"])
def test_token_missing_a_required_claim_is_401_even_when_signed(missing):
    now = int(time.time())
    claims = {
        "sub": "0123456789abcdef",
        "tier": "free",
        "label": "x",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }
    del claims[missing]
    status, kind, message = _status_and_message(
        TokenService(SECRET).verify, jwt.encode(claims, SECRET, algorithm="HS256")
    )
    assert (status, kind) == (401, "authentication_error")
    assert missing in message


@pytest.mark.parametrize(
    "change", [{"tier": "admin"}, {"tier": None}, {"sub": ""}, {"sub": 7}, {"label": None}, {"jti": 5}]
)
def test_token_with_wrong_claims_is_401_even_when_signed(change):
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "0123456789abcdef",
        "tier": "free",
        "label": "x",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }
    claims.update(change)
    status, kind, _ = _status_and_message(
        TokenService(SECRET).verify, jwt.encode(claims, SECRET, algorithm="HS256")
    )
    assert (status, kind) == (401, "authentication_error")


def test_token_issued_in_the_future_is_401():
    now = int(time.time())
    claims = {
        "sub": "0123456789abcdef",
        "tier": "free",
        "label": "x",
        "iat": now + 30,
        "exp": now + 90,
        "jti": "j",
    }
    status, _, message = _status_and_message(
        TokenService(SECRET).verify, jwt.encode(claims, SECRET, algorithm="HS256")
    )
    assert status == 401 and "future" in message


def test_verify_failure_messages_never_echo_the_token():
    service = TokenService(SECRET)
    good = service.issue(Caller("0123456789abcdef", "someone", "pro"))
    for bad in (good + "x", good[:-4], "garbage-" + good, good.replace(".", "", 1), "secret-looking-value"):
        _, _, message = _status_and_message(service.verify, bad)
        assert bad not in message
        assert "secret-looking-value" not in message


def test_authenticator_raw_key_message_does_not_reveal_if_the_key_exists():
    auth = make_auth()
    _, _, known = _status_and_message(auth.authenticate, f"Bearer {DEMO_KEYS['pro']}")
    _, _, unknown = _status_and_message(auth.authenticate, f"Bearer {UNKNOWN_KEY}")
    assert known == unknown


def test_authenticator_exchange_then_authenticate():
    auth = make_auth()
    task_token = auth.exchange(f"Bearer {DEMO_KEYS['free']}")
    caller = auth.authenticate(f"Bearer {task_token}")
    assert caller == Caller(key_id(DEMO_KEYS["free"]), "demo-free", "free")


def test_authenticator_rejects_an_unknown_flavour():
    with pytest.raises(ValueError, match="flavour"):
        make_auth("openai")


def test_from_config_uses_the_configured_secret(monkeypatch):
    monkeypatch.delenv(JWT_SECRET_ENV, raising=False)
    auth = Authenticator.from_config(ServerConfig(jwt_secret=SECRET, token_ttl_s=30))
    issued = auth.exchange(f"Bearer {DEMO_KEYS['free']}")
    TokenService(SECRET).verify(issued)
    claims = claims_of(issued)
    assert claims["exp"] - claims["iat"] == 30


def test_from_config_falls_back_to_the_environment_secret(monkeypatch):
    monkeypatch.setenv(JWT_SECRET_ENV, OTHER_SECRET)
    auth = Authenticator.from_config(ServerConfig())
    TokenService(OTHER_SECRET).verify(auth.exchange(f"Bearer {DEMO_KEYS['free']}"))


def test_from_config_without_secret_generates_one_per_start(monkeypatch):
    monkeypatch.delenv(JWT_SECRET_ENV, raising=False)
    first = Authenticator.from_config(ServerConfig())
    second = Authenticator.from_config(ServerConfig())
    issued = first.exchange(f"Bearer {DEMO_KEYS['free']}")
    assert first.authenticate(f"Bearer {issued}").label == "demo-free"
    status, _, message = _status_and_message(second.authenticate, f"Bearer {issued}")
    assert status == 401 and "signature" in message


def test_from_config_reads_the_flavour():
    auth = Authenticator.from_config(ServerConfig(flavour="fortytwo", jwt_secret=SECRET))
    assert auth.authenticate(f"Bearer {DEMO_KEYS['internal']}").tier == "internal"


# --- the cache of verified tokens (TokenService.verify remembers a token until its exp) ---------------


def _seconds_left(token: str) -> float:
    return float(jwt.decode(token, options={"verify_signature": False})["exp"]) - time.time()


def test_a_remembered_token_is_still_refused_once_it_expires():
    service = TokenService(SECRET, ttl_s=2)
    token = service.issue(Caller(key_id(DEMO_KEYS["pro"]), "demo-pro", "pro"))
    assert service.verify(token).tier == "pro"
    assert service.verify(token).tier == "pro"  # now from the cache
    time.sleep(max(0.0, _seconds_left(token)) + 0.05)
    status, _, message = _status_and_message(service.verify, token)
    assert status == 401 and "expired" in message.lower()


def test_a_tampered_copy_of_a_remembered_token_is_refused():
    service = TokenService(SECRET)
    token = service.issue(Caller(key_id(DEMO_KEYS["free"]), "demo-free", "free"))
    service.verify(token)
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    raised = jwt.encode({**claims, "tier": "internal"}, OTHER_SECRET, algorithm="HS256").split(".")[1]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for forged in (f"{header}.{raised}.{signature}", f"{header}.{payload}.{flipped}"):
        assert _status_and_message(service.verify, forged)[0] == 401


def test_the_cache_stays_bounded_and_every_token_still_verifies():
    service = TokenService(SECRET, cache_size=2)
    tokens = [service.issue(Caller(key_id(DEMO_KEYS["pro"]), f"label-{i}", "pro")) for i in range(5)]
    for _ in range(2):
        assert [service.verify(t).label for t in tokens] == [f"label-{i}" for i in range(5)]
    assert len(service._verified) <= 2
