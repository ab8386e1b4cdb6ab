"""One probe per fault: a short HTTP exchange that answers "is this fault's deviation visible here?".

``test_faults_manifest.py`` runs each probe against the faulty server (it must say yes) and against the
clean one (it must say no). Probes are deliberately direct, knowing what each fault does; they prove
the faults, not the suite, which finds them on its own (``prove.py``).

A probe gets a :class:`Probe`: an httpx client on a live server plus helpers for tokens, chats,
streams and in-flight requests. The servers are built with :data:`SERVER_OPTIONS` (a known JWT secret,
a per-token delay so requests overlap, a small KV budget so a 503 is one request away).
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

import httpx
import jwt

from reference_server.auth import DEMO_EXTRA_KEYS, DEMO_KEYS
from reference_server.models import Tier
from suite.token_segments import b64url_encode

__all__ = ["PROBES", "SERVER_OPTIONS", "Probe"]

JWT_SECRET = "conform42-fault-probes-secret-0123456789abcdef"
SERVER_OPTIONS: dict[str, Any] = {"sim_token_delay": 0.05, "kv_budget_tokens": 3000, "jwt_secret": JWT_SECRET}
CHAT = "/v1/chat/completions"
#: 2x2 PNGs (red, blue) as data: URLs (the reference server never fetches remote images).
IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDA"
    "wMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)
IMAGE_BLUE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGNkYPjPwMDAxM"
    "DAwMDAAAALHwEDmIWXfgAAAABJRU5ErkJggg=="
)
#: Short waits for probes of hanging and stalling servers.
STALL_TIMEOUT = httpx.Timeout(5.0, read=1.5)


def body(model: str = "42-logic", content: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}


class Probe:
    """A client of one live server, with the few moves the probes need."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------------------------ tokens

    def token(self, tier: str = "pro", key: str | None = None, fresh: bool = False) -> str:
        name = key or tier
        if fresh or name not in self._tokens:
            response = self.http.post("/api/token", headers=_bearer(key or DEMO_KEYS[cast(Tier, tier)]))
            assert response.status_code == 200, response.text
            self._tokens[name] = response.json()["task_token"]
        return self._tokens[name]

    def auth(self, tier: str = "pro", **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tier, **kwargs)}"}

    @staticmethod
    def signed(claims: dict[str, Any], secret: str = JWT_SECRET, alg: str = "HS256") -> str:
        return jwt.encode(claims, secret, algorithm=alg)

    def aged_token(self, age_s: int, tier: str = "pro") -> str:
        """A correctly signed copy of the tier's token, issued ``age_s`` ago with the usual 60 s life."""
        issued = int(time.time()) - age_s
        return self.signed({**self.claims(tier), "iat": issued, "exp": issued + 60})

    def claims(self, tier: str = "pro") -> dict[str, Any]:
        decoded: dict[str, Any] = jwt.decode(self.token(tier), options={"verify_signature": False})
        return decoded

    # ---------------------------------------------------------------------------------- requests

    def get(
        self, path: str, tier: str | None = "pro", headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.http.get(
            path, headers=headers if headers is not None else self.auth(tier or "pro"), **kwargs
        )

    def post(
        self,
        path: str,
        payload: Any = None,
        tier: str = "pro",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self.http.post(
            path, json=payload, headers=headers if headers is not None else self.auth(tier), **kwargs
        )

    def chat(self, tier: str = "pro", **fields: Any) -> httpx.Response:
        return self.post(CHAT, body(**fields), tier)

    def embed(self, text: Any, **extra: Any) -> httpx.Response:
        return self.post("/v1/embeddings", {"model": "42-embed", "input": text, **extra})

    def stream(self, tier: str = "pro", **fields: Any) -> tuple[httpx.Response, list[str]]:
        """A streamed chat: the response and its events' data (``[DONE]`` included), read to the end."""
        with self.http.stream("POST", CHAT, json=body(stream=True, **fields), headers=self.auth(tier)) as r:
            text = r.read().decode()
        events = [line[5:].strip() for line in text.split("\n") if line.startswith("data:")]
        return r, events

    def chunks(self, tier: str = "pro", **fields: Any) -> list[dict[str, Any]]:
        _, events = self.stream(tier, **fields)
        return [json.loads(e) for e in events if e != "[DONE]"]

    @contextmanager
    def in_flight(self, count: int, tier: str = "pro", key: str | None = None) -> Iterator[list[int]]:
        """``count`` streams of one key admitted (first event read) and held open; yields their statuses."""
        statuses: list[int] = []
        # The line iterators are kept: a dropped one is closed, and closing it hangs up the stream.
        readers: list[Iterator[str]] = []
        with ExitStack() as stack:
            for _ in range(count):
                response = stack.enter_context(
                    self.http.stream(
                        "POST",
                        CHAT,
                        json=body(stream=True, content="Tell me a long story", max_tokens=16),
                        headers=self.auth(tier, key=key),
                    )
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    readers.append(response.iter_lines())
                    next(readers[-1])
            yield statuses

    # --------------------------------------------------------------------------------- batch & pipe

    def batch(self, tasks: list[dict[str, Any]] | None = None, tier: str = "pro") -> httpx.Response:
        tasks = tasks or [
            {"id": f"t{i}", "messages": [{"role": "user", "content": f"Task {i}"}]} for i in (1, 2)
        ]
        return self.post("/v1/batch", {"model": "42-logic", "tasks": tasks}, tier)

    def finished_batch(self, tier: str = "pro") -> dict[str, Any]:
        submitted = self.batch(tier=tier)
        assert submitted.status_code in (200, 202), submitted.text
        batch_id = submitted.json()["batch_id"]
        deadline = time.monotonic() + 20
        while True:
            data: dict[str, Any] = self.get(f"/v1/batch/{batch_id}", tier).json()
            if data.get("status") not in ("pending", "running") or time.monotonic() > deadline:
                return data
            time.sleep(0.1)

    def pipeline(
        self, tier: str = "pro", template: str = "design-analysis", image: str = IMAGE
    ) -> httpx.Response:
        return self.post("/v1/pipeline", {"template": template, "input": {"image_url": image}}, tier)


# ---------------------------------------------------------------------------------------- probes

ProbeFn = Callable[[Probe], bool]
PROBES: dict[str, ProbeFn] = {}


def probe(name: str) -> Callable[[ProbeFn], ProbeFn]:
    def register(fn: ProbeFn) -> ProbeFn:
        PROBES[name] = fn
        return fn

    return register


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# auth


@probe("auth_token_never_expires")
def _(p: Probe) -> bool:
    expired = p.aged_token(120)
    return p.get("/v1/models", headers=_bearer(expired)).status_code == 200


@probe("auth_token_expires_early")
def _(p: Probe) -> bool:
    thirty_s_old = p.aged_token(30)
    return p.get("/v1/models", headers=_bearer(thirty_s_old)).status_code == 401


@probe("auth_raw_key_accepted")
def _(p: Probe) -> bool:
    return p.get("/v1/models", headers=_bearer(DEMO_KEYS["pro"])).status_code == 200


@probe("auth_alg_none_accepted")
def _(p: Probe) -> bool:
    # Built by hand: PyJWT's typing of key=None depends on whether cryptography is installed.
    header = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{b64url_encode(json.dumps(p.claims()).encode())}."
    return p.get("/v1/models", headers=_bearer(unsigned)).status_code == 200


@probe("auth_signature_unchecked")
def _(p: Probe) -> bool:
    forged = p.signed({**p.claims("free"), "tier": "internal"}, secret="another-secret-of-32-bytes-or-more!!")
    return p.get("/v1/models", headers=_bearer(forged)).status_code == 200


@probe("auth_missing_header_allowed")
def _(p: Probe) -> bool:
    return p.get("/v1/models", headers={}).status_code == 200


@probe("auth_unknown_key_gets_token")
def _(p: Probe) -> bool:
    response = p.http.post("/api/token", headers=_bearer("sk-42ai-not-a-key-000000000000000"))
    return response.status_code == 200 and "task_token" in response.text


@probe("auth_opaque_token")
def _(p: Probe) -> bool:
    return p.token(fresh=True).count(".") != 2


@probe("auth_expired_batch_poll_allowed")
def _(p: Probe) -> bool:
    batch_id = p.batch().json()["batch_id"]
    expired = p.aged_token(120)
    return p.get(f"/v1/batch/{batch_id}", headers=_bearer(expired)).status_code == 200


# models


@probe("model_unknown_served")
def _(p: Probe) -> bool:
    return p.chat(model="42-nonexistent").status_code == 200


@probe("model_echo_wrong")
def _(p: Probe) -> bool:
    return bool(p.chat(model="42-logic").json()["model"] != "42-logic")


def _listed(p: Probe) -> set[str]:
    data = p.get("/v1/models").json()
    return {m["id"] for m in data.get("data", [])}


@probe("models_list_incomplete")
def _(p: Probe) -> bool:
    return not {"42-coder", "42-embed"} <= _listed(p)


@probe("models_list_wrong_shape")
def _(p: Probe) -> bool:
    data = p.get("/v1/models").json()
    return data.get("object") != "list" or not isinstance(data.get("data"), list)


# limits


def _second_free(p: Probe) -> httpx.Response:
    with p.in_flight(1, "free"):
        return p.chat("free")


def _retry_after_deviates(response: httpx.Response, status: int, expected: str, *, missing: bool) -> bool:
    """A ``status`` answer whose Retry-After is missing (``missing``) or present but not ``expected``."""
    if response.status_code != status:
        return False
    value = response.headers.get("retry-after")
    return value is None if missing else value not in (None, expected)


@probe("limit_429_no_retry_after")
def _(p: Probe) -> bool:
    return _retry_after_deviates(_second_free(p), 429, "5", missing=True)


@probe("limit_429_wrong_retry_after")
def _(p: Probe) -> bool:
    return _retry_after_deviates(_second_free(p), 429, "5", missing=False)


def _kv_503(p: Probe) -> httpx.Response:
    # The probe servers have 3000 tokens of KV budget: one 2000-token reservation leaves too little.
    held_body = body(stream=True, max_tokens=2000)
    with p.http.stream("POST", CHAT, json=held_body, headers=p.auth("internal")) as held:
        assert held.status_code == 200
        lines = held.iter_lines()
        next(lines)
        return p.chat("internal", max_tokens=1500)


@probe("limit_503_no_retry_after")
def _(p: Probe) -> bool:
    return _retry_after_deviates(_kv_503(p), 503, "30", missing=True)


@probe("limit_503_wrong_retry_after")
def _(p: Probe) -> bool:
    return _retry_after_deviates(_kv_503(p), 503, "30", missing=False)


@probe("limit_free_over_admission")
def _(p: Probe) -> bool:
    return _second_free(p).status_code == 200


@probe("limit_queue_instead_of_429")
def _(p: Probe) -> bool:
    # Held back until the held stream ends (its 16 tokens take 0.8 s here), then served.
    started = time.monotonic()
    answer = _second_free(p)
    return answer.status_code == 200 and time.monotonic() - started > 0.3


@probe("limit_pro_over_admission")
def _(p: Probe) -> bool:
    with p.in_flight(3, "pro") as held:
        assert held == [200, 200, 200]
        return p.chat("pro").status_code == 200


@probe("limit_pro_429_too_early")
def _(p: Probe) -> bool:
    with p.in_flight(3, "pro") as held:
        return held != [200, 200, 200]


@probe("limit_internal_capped")
def _(p: Probe) -> bool:
    with p.in_flight(8, "internal") as held:
        return any(status == 429 for status in held)


@probe("limit_slot_released_late")
def _(p: Probe) -> bool:
    assert p.chat("free", max_tokens=1).status_code == 200
    return p.chat("free", max_tokens=1).status_code == 429


@probe("limit_stream_not_counted")
def _(p: Probe) -> bool:
    return _second_free(p).status_code == 200


@probe("limit_disconnect_leaks_slot")
def _(p: Probe) -> bool:
    with p.http.stream("POST", CHAT, json=body(stream=True, max_tokens=16), headers=p.auth("free")) as held:
        lines = held.iter_lines()
        next(lines)
    # The clean server notices the hang-up at its next event (50 ms) and the stream ends in 0.8 s anyway.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if p.chat("free", max_tokens=1).status_code == 200:
            return False
        time.sleep(0.2)
    return True


@probe("limit_per_token")
def _(p: Probe) -> bool:
    first = p.token("free")
    second = p.token("free", key=DEMO_KEYS["free"], fresh=True)  # the same key, another token
    with p.in_flight(1, "free"):
        assert p.token("free") == first
        return p.post(CHAT, body(), headers=_bearer(second)).status_code == 200


@probe("model_tier_not_enforced")
def _(p: Probe) -> bool:
    return p.chat("free", model="42-think").status_code == 200


# chat


def _completion(p: Probe, **fields: Any) -> dict[str, Any]:
    response = p.chat(**fields)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


@probe("chat_missing_created")
def _(p: Probe) -> bool:
    return "created" not in _completion(p)


@probe("chat_wrong_object")
def _(p: Probe) -> bool:
    return bool(_completion(p)["object"] != "chat.completion")


@probe("chat_usage_not_adding_up")
def _(p: Probe) -> bool:
    usage = _completion(p)["usage"]
    return bool(usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"])


@probe("chat_id_without_prefix")
def _(p: Probe) -> bool:
    return not str(_completion(p)["id"]).startswith("chatcmpl-")


@probe("chat_finish_reason_invalid")
def _(p: Probe) -> bool:
    return _completion(p)["choices"][0]["finish_reason"] not in ("stop", "length", "content_filter")


@probe("chat_ignores_max_tokens")
def _(p: Probe) -> bool:
    return bool(_completion(p, max_tokens=2)["usage"]["completion_tokens"] > 2)


@probe("chat_rejects_unknown_members")
def _(p: Probe) -> bool:
    return p.chat(temperature=0.2, x_probe=True).status_code == 422


@probe("chat_content_null")
def _(p: Probe) -> bool:
    return _completion(p)["choices"][0]["message"]["content"] is None


@probe("chat_json_as_text_plain")
def _(p: Probe) -> bool:
    return not p.chat().headers.get("content-type", "").startswith("application/json")


@probe("server_hangs")
def _(p: Probe) -> bool:
    try:
        p.http.post(CHAT, json=body(max_tokens=1), headers=p.auth(), timeout=STALL_TIMEOUT)
    except httpx.ReadTimeout:
        return True
    return False


# streaming


def _finishes(chunks: list[dict[str, Any]]) -> list[str]:
    return [
        c["choices"][0]["finish_reason"]
        for c in chunks
        if c.get("choices") and c["choices"][0].get("finish_reason")
    ]


@probe("stream_missing_done")
def _(p: Probe) -> bool:
    return p.stream()[1][-1] != "[DONE]"


@probe("stream_two_finish_reasons")
def _(p: Probe) -> bool:
    return len(_finishes(p.chunks())) > 1


@probe("stream_content_after_finish")
def _(p: Probe) -> bool:
    chunks = [c for c in p.chunks() if c.get("choices")]
    last = max(i for i, c in enumerate(chunks) if c["choices"][0].get("finish_reason"))
    return any(c["choices"][0].get("delta", {}).get("content") for c in chunks[last + 1 :])


@probe("stream_wrong_content_type")
def _(p: Probe) -> bool:
    return not p.stream()[0].headers.get("content-type", "").startswith("text/event-stream")


@probe("stream_no_role_first")
def _(p: Probe) -> bool:
    return bool(p.chunks()[0]["choices"][0]["delta"].get("role") != "assistant")


@probe("stream_usage_unrequested")
def _(p: Probe) -> bool:
    return any(c.get("usage") is not None for c in p.chunks())


@probe("stream_usage_not_adding_up")
def _(p: Probe) -> bool:
    usage = p.chunks(stream_options={"include_usage": True})[-1]["usage"]
    return bool(usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"])


@probe("stream_ids_differ")
def _(p: Probe) -> bool:
    return len({c["id"] for c in p.chunks()}) > 1


@probe("stream_stalls")
def _(p: Probe) -> bool:
    with p.http.stream("POST", CHAT, json=body(stream=True), headers=p.auth(), timeout=STALL_TIMEOUT) as r:
        try:
            r.read()
        except httpx.ReadTimeout:
            return True
    return False


@probe("stream_error_as_200")
def _(p: Probe) -> bool:
    return p.post(CHAT, body(model="42-nonexistent", stream=True)).status_code == 200


# embeddings


def _embedded(p: Probe, texts: Any, **extra: Any) -> dict[str, Any]:
    response = p.embed(texts, **extra)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _vector_of(p: Probe, text: str) -> list[float]:
    vector: list[float] = _embedded(p, text)["data"][0]["embedding"]
    return vector


@probe("embed_misordered")
def _(p: Probe) -> bool:
    items = _embedded(p, ["alpha", "beta", "gamma"])["data"]
    return [i["index"] for i in items] != [0, 1, 2] or items[0]["embedding"] != _vector_of(p, "alpha")


@probe("embed_unnormalised")
def _(p: Probe) -> bool:
    norm: float = sum(x * x for x in _vector_of(p, "alpha beta")) ** 0.5
    return abs(norm - 1) > 0.001


@probe("embed_index_off_by_one")
def _(p: Probe) -> bool:
    return bool(_embedded(p, "alpha")["data"][0]["index"] != 0)


@probe("embed_dimension_varies")
def _(p: Probe) -> bool:
    return len({len(i["embedding"]) for i in _embedded(p, ["alpha", "beta"])["data"]}) > 1


@probe("embed_usage_not_adding_up")
def _(p: Probe) -> bool:
    usage = _embedded(p, "alpha beta")["usage"]
    return bool(usage["total_tokens"] != usage["prompt_tokens"])


@probe("embed_wrong_object")
def _(p: Probe) -> bool:
    data = _embedded(p, "alpha")
    return data.get("object") != "list" or data["data"][0].get("object") != "embedding"


@probe("embed_drops_duplicate_inputs")
def _(p: Probe) -> bool:
    return len(_embedded(p, ["alpha", "alpha", "beta"])["data"]) != 3


@probe("embed_base64_float64")
def _(p: Probe) -> bool:
    raw = base64.b64decode(_embedded(p, "alpha", encoding_format="base64")["data"][0]["embedding"])
    as_float32 = struct.unpack(f"<{len(raw) // 4}f", raw)
    return len(as_float32) != len(_vector_of(p, "alpha"))


# batch


@probe("batch_loses_result")
def _(p: Probe) -> bool:
    return set(p.finished_batch().get("results", {})) != {"t1", "t2"}


@probe("batch_counts_a_result_twice")
def _(p: Probe) -> bool:
    data = p.finished_batch()
    return bool(data.get("completed") != data.get("total"))


@probe("batch_readable_by_other_key")
def _(p: Probe) -> bool:
    batch_id = p.batch().json()["batch_id"]
    other = p.token("pro", key=DEMO_EXTRA_KEYS["pro"])
    return p.get(f"/v1/batch/{batch_id}", headers=_bearer(other)).status_code == 200


@probe("batch_status_nonstandard")
def _(p: Probe) -> bool:
    return p.finished_batch().get("status") not in ("pending", "running", "completed", "failed")


@probe("batch_submission_not_pending")
def _(p: Probe) -> bool:
    return bool(p.batch().json().get("status") != "pending")


@probe("batch_accepts_duplicate_ids")
def _(p: Probe) -> bool:
    tasks = [{"id": "t1", "messages": [{"role": "user", "content": f"Task {i}"}]} for i in (1, 2)]
    return p.batch(tasks).status_code in (200, 202)


@probe("batch_unknown_id_500")
def _(p: Probe) -> bool:
    return p.get("/v1/batch/batch_never_issued_0000").status_code >= 500


# pipeline


def _ran(p: Probe, **kwargs: Any) -> dict[str, Any]:
    response = p.pipeline(**kwargs)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _step_ids(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s.get("id"), s.get("model")) for s in data.get("results", [])]


@probe("pipeline_skips_step")
def _(p: Probe) -> bool:
    return len(_step_ids(_ran(p))) < 2


@probe("pipeline_steps_reversed")
def _(p: Probe) -> bool:
    return _step_ids(_ran(p)) != [("scan", "42-vision"), ("plan", "42-think")]


@probe("pipeline_ignores_references")
def _(p: Probe) -> bool:
    red, blue = (_ran(p, image=IMAGE), _ran(p, image=IMAGE_BLUE))
    assert red["results"][0]["content"] != blue["results"][0]["content"], "the scans should differ"
    return bool(red["results"][1]["content"] == blue["results"][1]["content"])


@probe("pipeline_final_output_wrong")
def _(p: Probe) -> bool:
    data = _ran(p)
    return bool(data["final_output"] != data["results"][-1]["content"])


@probe("pipeline_step_status_wrong")
def _(p: Probe) -> bool:
    return any(s.get("status") != "completed" for s in _ran(p)["results"])


@probe("pipeline_unknown_template_runs")
def _(p: Probe) -> bool:
    return p.pipeline(template="no-such-template").status_code == 200


@probe("pipeline_tier_not_enforced")
def _(p: Probe) -> bool:
    return p.pipeline(tier="free").status_code == 200


# errors


def _error(response: httpx.Response) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            error: dict[str, Any] = data["error"]
            return error
    return {}


@probe("err_envelope_detail")
def _(p: Probe) -> bool:
    return not _error(p.get("/v1/models", headers={}))


@probe("err_401_wrong_type")
def _(p: Probe) -> bool:
    return _error(p.get("/v1/models", headers={})).get("type") != "authentication_error"


@probe("err_429_wrong_type")
def _(p: Probe) -> bool:
    response = _second_free(p)
    return response.status_code == 429 and _error(response).get("type") != "rate_limit_exceeded"


@probe("err_unknown_model_wrong_type")
def _(p: Probe) -> bool:
    return _error(p.chat(model="42-nonexistent")).get("type") != "model_not_found"


@probe("err_bad_json_500")
def _(p: Probe) -> bool:
    response = p.http.post(
        CHAT,
        content=b'{"model": "42-logic", "messages": [',
        headers={**p.auth(), "Content-Type": "application/json"},
    )
    return response.status_code >= 500


@probe("err_unknown_role_500")
def _(p: Probe) -> bool:
    payload = {"model": "42-logic", "messages": [{"role": "robot", "content": "beep"}]}
    return p.post(CHAT, payload).status_code >= 500


@probe("err_422_without_detail")
def _(p: Probe) -> bool:
    response = p.post(CHAT, {"model": "42-logic"})
    return response.status_code == 422 and not isinstance(response.json().get("detail"), list)


# sdk


@probe("sdk_expired_token_403")
def _(p: Probe) -> bool:
    expired = p.aged_token(120)
    return p.get("/v1/models", headers=_bearer(expired)).status_code == 403


@probe("sdk_stream_chunk_without_delta")
def _(p: Probe) -> bool:
    return any("delta" not in c["choices"][0] for c in p.chunks() if c.get("choices"))
