"""One probe per server-side liberty: "does this liberty show over HTTP here?" (mirror of ``probes.py``).

``test_liberties.py`` runs each probe against the server with the liberty (it must say yes) and against
the clean one (it must say no), so every liberty really changes something a client can see. Liberties
of the path (``intermediary``, ``busy``, ``token_delay_s``) serve the clean app and are proven by their
own tests there.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable

import httpx

from reference_server.auth import DEMO_KEYS
from tests.faults.probes import IMAGE

__all__ = ["PROBES", "LibertyProbe"]

CHAT = "/v1/chat/completions"


class LibertyProbe:
    """An httpx client of one live server (42ai or fortytwo flavour) with the few moves probes need."""

    def __init__(self, base_url: str, flavour: str = "42ai") -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)
        self.flavour = flavour

    def close(self) -> None:
        self.http.close()

    def auth(self, tier: str = "pro") -> dict[str, str]:
        key = DEMO_KEYS[tier]  # type: ignore[index]
        if self.flavour == "fortytwo":
            return {"Authorization": f"Bearer {key}"}
        answer = self.http.post("/api/token", headers={"Authorization": f"Bearer {key}"})
        return {"Authorization": f"Bearer {answer.json()['task_token']}"}

    def chat(
        self, stream: bool = False, max_tokens: int = 8, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = {
            "model": "42-general",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": max_tokens,
        }
        return self.http.post(
            CHAT, json={**body, "stream": stream}, headers={**self.auth(), **(headers or {})}
        )

    def stream_raw(self) -> list[bytes]:
        """The raw pieces of a short stream as read (no decoding: identity asked for)."""
        body = {"model": "42-general", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
        headers = {**self.auth(), "Accept-Encoding": "identity"}
        with self.http.stream("POST", CHAT, json={**body, "stream": True}, headers=headers) as response:
            return list(response.iter_raw())


Probe = Callable[[LibertyProbe], bool]


def _raw(p: LibertyProbe) -> bytes:
    return b"".join(p.stream_raw())


def _token_status(p: LibertyProbe) -> bool:
    return (
        p.http.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS['pro']}"}).status_code == 201
    )


def _jwe(p: LibertyProbe) -> bool:
    token = p.auth()["Authorization"].split(" ", 1)[1]
    works = p.http.get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    header, rest = token.split(".", 1)
    tampered = f"{header[:-2]}{'A' if header[-2] != 'A' else 'B'}{header[-1]}.{rest}"
    refused = p.http.get("/v1/models", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401
    return token.count(".") == 4 and works and refused


def _oauth(p: LibertyProbe) -> bool:
    body = p.http.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS['pro']}"}).json()
    denied = p.http.get("/v1/models", headers={"Authorization": "Bearer nope"})
    return body.get("token_type") == "Bearer" and "www-authenticate" in denied.headers


def _models(p: LibertyProbe) -> bool:
    listing = p.http.get("/v1/models", headers=p.auth()).json()
    alias = p.http.post(
        CHAT,
        json={"model": "42-general-latest", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
        headers=p.auth(),
    )
    return bool(listing["data"][0]["id"] == "42-rerank" and alias.json().get("model") == "42-general-latest")


def _busy_503(p: LibertyProbe) -> bool:
    headers = p.auth()
    statuses = [
        p.http.post("/v1/embeddings", json={"model": "42-embed", "input": "x"}, headers=headers)
        for _ in range(200)
    ]
    busy = [r for r in statuses if r.status_code == 503]
    twice = any(a.status_code == b.status_code == 503 for a, b in itertools.pairwise(statuses))
    return bool(busy) and not twice and busy[0].headers.get("retry-after") == "30"


def _extra_429(p: LibertyProbe) -> bool:
    headers = p.auth("free")
    # The sim answers "Hi" in a few tokens; asked for 2000 words it streams the whole cap (10 s here).
    prompt = "Write a story, at least 2000 words."
    body = {"model": "42-general", "messages": [{"role": "user", "content": prompt}], "max_tokens": 200}
    with p.http.stream("POST", CHAT, json={**body, "stream": True}, headers=headers) as held:
        # The iterator is kept: a dropped one is closed, and closing it hangs up the held stream.
        chunks = held.iter_raw()
        next(chunks)
        second = p.http.post(CHAT, json=body, headers=headers)
    return second.status_code == 429 and second.headers.get("retry-after-ms") == "5000"


def _pretty(p: LibertyProbe) -> bool:
    return p.http.get("/v1/models", headers=p.auth()).text.startswith('{\n  "data"')


def _escaped(p: LibertyProbe) -> bool:
    return "chatcmpl\\u002d" in p.chat().text


def _extra_members(p: LibertyProbe) -> bool:
    return "x_request_id" in p.chat().json()


def _chunked(p: LibertyProbe) -> bool:
    answer = p.chat()
    return answer.headers.get("transfer-encoding") == "chunked" and "content-length" not in answer.headers


def _gzip(p: LibertyProbe) -> bool:
    zipped = p.chat(headers={"Accept-Encoding": "gzip"}).headers.get("content-encoding") == "gzip"
    plain = p.chat(headers={"Accept-Encoding": "identity"}).headers.get("content-encoding") is None
    return zipped and plain


def _headers(p: LibertyProbe) -> bool:
    return "x-request-id" in p.chat().headers


def _charset(p: LibertyProbe) -> bool:
    return bool(p.chat().headers.get("content-type") == "application/json; charset=utf-8")


def _exponent(p: LibertyProbe) -> bool:
    text = p.http.post("/v1/embeddings", json={"model": "42-embed", "input": "x"}, headers=p.auth()).text
    return re.search(r"\d\.\d{8}e[+-]\d\d", text) is not None


def _batch(p: LibertyProbe) -> httpx.Response:
    tasks = [{"id": "t1", "messages": [{"role": "user", "content": "Task 1"}]}]
    return p.http.post("/v1/batch", json={"model": "42-logic", "tasks": tasks}, headers=p.auth())


def _batch_200(p: LibertyProbe) -> bool:
    return _batch(p).status_code == 200


def _batch_pending(p: LibertyProbe) -> bool:
    batch_id = _batch(p).json()["batch_id"]
    time.sleep(0.5)  # the sim has finished the one short task by now; the queue still says pending
    status = p.http.get(f"/v1/batch/{batch_id}", headers=p.auth()).json()
    return status["status"] == "pending" and "results" not in status


def _pipeline(p: LibertyProbe) -> httpx.Response:
    body = {"template": "design-analysis", "input": {"image_url": IMAGE}}
    return p.http.post("/v1/pipeline", json=body, headers=p.auth(), timeout=30)


def _pipeline_extra(p: LibertyProbe) -> bool:
    return "pipeline_id" in _pipeline(p).json()


def _pipeline_201(p: LibertyProbe) -> bool:
    return _pipeline(p).status_code == 201


def _errors_400(p: LibertyProbe) -> bool:
    answer = p.http.post(CHAT, json={"model": "42-general", "messages": "x"}, headers=p.auth())
    return answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"


def _split(p: LibertyProbe) -> bool:
    return len(p.stream_raw()) >= 40


def _slow_path(p: LibertyProbe) -> bool:
    times = []
    for _ in range(3):
        started = time.monotonic()
        p.http.get("/health")
        times.append(time.monotonic() - started)
    return min(times) >= 0.02


PROBES: dict[str, Probe] = {
    "auth_token_201_created": _token_status,
    "auth_token_jwe_five_parts": _jwe,
    "auth_token_oauth_style": _oauth,
    "models_listing_richer": _models,
    "limits_503_now_and_then": _busy_503,
    "limits_429_extra_headers": _extra_429,
    "json_pretty_reordered": _pretty,
    "json_escaped_strings": _escaped,
    "json_extra_members": _extra_members,
    "http_chunked_json": _chunked,
    "http_gzip": _gzip,
    "http_extra_headers": _headers,
    "http_content_type_charset": _charset,
    "embed_exponent_floats": _exponent,
    "batch_submit_200": _batch_200,
    "batch_pending_until_done": _batch_pending,
    "pipeline_extra_fields": _pipeline_extra,
    "pipeline_201_created": _pipeline_201,
    "errors_400_for_schema": _errors_400,
    "sse_crlf_line_endings": lambda p: b"}\r\n\r\n" in _raw(p),
    "sse_cr_line_endings": lambda p: b"}\r\r" in _raw(p) and b"\n" not in _raw(p),
    "sse_comments_heartbeats": lambda p: b": keep-alive\n\n" in _raw(p),
    "sse_fields_id_event_retry": lambda p: b"retry: 3000\nid: 1\nevent: message\ndata: " in _raw(p),
    "sse_data_no_space": lambda p: b"data:{" in _raw(p) and b"data: " not in _raw(p),
    "sse_multiline_data": lambda p: b'data: {\ndata:  "' in _raw(p),
    "sse_split_writes": _split,
    "network_slow_path": _slow_path,
}
