"""The LLM calls of one user: requests with a task token, their answers judged and booked. No Locust import.

One ``Calls`` per Locust user (``loadtests.users``), which picks the kind and guards the call with
``Outcomes.guard``. Each call stamps its start just before the request is written (``loadtests.transport``)
and books what came back through ``Outcomes``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import gevent  # type: ignore[import-untyped]
from geventhttpclient.response import HTTPSocketPoolResponse

from loadtests.failures import RequestFailed, Unanswered
from loadtests.options import HarnessConfig
from loadtests.outcomes import Outcomes
from loadtests.promises import batch_violation
from loadtests.runtime import STATE
from loadtests.stream_parser import ChatStream
from loadtests.tokens import Tokens
from loadtests.transport import connect_ahead, open_client, response_lines
from loadtests.workload import Conversation

__all__ = ["CONNECT_TIMEOUT_S", "Calls"]

_JSON = "application/json"
CONNECT_TIMEOUT_S = 5.0


class Calls:
    """One user's connections to the target and its token service, and the calls over them."""

    def __init__(
        self,
        tier: str,
        cfg: HarnessConfig,
        host: str,
        pool_size: int,
        events: Any,
        tokens: Tokens,
        current_config: Callable[[], HarnessConfig],
        conversation: Conversation,
    ) -> None:
        self.tier = tier
        self.cfg = cfg
        #: what this user's chat requests ask, turn by turn (loadtests.workload)
        self.conversation = conversation
        self._tokens = tokens
        self._current_config = current_config
        self.http = open_client(
            host,
            concurrency=pool_size,
            connection_timeout=CONNECT_TIMEOUT_S,
            network_timeout=cfg.request_timeout,
            headers={"User-Agent": "conform42-load"},
        )
        self.token_http = open_client(
            cfg.token_url or host,
            concurrency=1,
            connection_timeout=CONNECT_TIMEOUT_S,
            network_timeout=cfg.request_timeout,
        )
        self.outcomes = Outcomes(tier, cfg, events)
        self._record: Any = open(cfg.record_file, "a", encoding="utf-8") if cfg.record_file else None  # noqa: SIM115

    def close(self) -> None:
        self.http.close()
        self.token_http.close()
        if self._record is not None:
            self._record.close()

    # ------------------------------------------------------------------------------------ plumbing
    def bearer(self, force: bool = False, stale: str | None = None) -> str:
        """The credential of this tier: its API key, or (42ai profile) the key's current task token."""
        cfg = self._current_config()
        key = cfg.keys[self.tier]
        if cfg.profile == "fortytwo":
            return key
        return self._tokens.bearer(key, self.exchange, cfg.token_ttl, force=force, stale=stale)

    def exchange(self, key: str) -> str:
        """Trade ``key`` for a task token (booked as a TOKEN row, not as request latency)."""
        start = time.perf_counter()
        exc: Exception | None = None
        token = ""
        try:
            resp = self.token_http.request(
                "POST",
                "/api/token",
                body=b"",
                headers={"Authorization": f"Bearer {key}", "Content-Type": _JSON},
            )
            body = resp.read()
            if resp.status_code != 200:
                raise RequestFailed(f"POST /api/token answered {resp.status_code}: {body[:200]!r}")
            token = str(json.loads(body)["task_token"])
        except Exception as e:
            exc = e
        self.outcomes.fire("TOKEN", f"{self.tier} /api/token", (time.perf_counter() - start) * 1000, 0, exc)
        STATE.collector.token_exchanges += 1
        if exc is not None:
            raise RequestFailed(f"task token exchange failed: {exc}") from exc
        return token

    def _open(
        self, method: str, path: str, body: bytes, bearer: str
    ) -> tuple[HTTPSocketPoolResponse, float, float]:
        headers = {"Authorization": f"Bearer {bearer}", "Content-Type": _JSON, "Accept": "*/*"}
        connect_ahead(self.http)
        wall = time.time()
        start = time.perf_counter()
        return self.http.request(method, path, body=body, headers=headers), start, wall

    def request(
        self, method: str, path: str, payload: Mapping[str, Any] | None
    ) -> tuple[HTTPSocketPoolResponse, float, float]:
        """Send with the current token; on a 401 refresh the token once and resend."""
        body = json.dumps(payload).encode() if payload is not None else b""
        bearer = self.bearer()
        resp, start, wall = self._open(method, path, body, bearer)
        if resp.status_code == 401 and self.cfg.profile == "42ai":
            resp.read()
            STATE.collector.token_retries_401 += 1
            bearer = self.bearer(force=True, stale=bearer)
            resp, start, wall = self._open(method, path, body, bearer)
        return resp, start, wall

    # -------------------------------------------------------------------------------------- kinds
    def stream(self, model: str, intended: float | None) -> None:
        name = f"{self.tier} {model} stream"
        turn = self.conversation.next_turn()
        payload = {
            "model": model,
            "messages": turn.messages,
            "max_tokens": turn.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        out = self.outcomes
        resp, start, wall = self.request("POST", "/v1/chat/completions", payload)
        out.dispatched(intended, start)
        if resp.status_code != 200:
            body = resp.read()
            ms = (time.perf_counter() - start) * 1000
            if not out.refused(resp, name, "POST /v1/chat/completions (stream)", ms):
                raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
            self.conversation.refused(turn)
            return
        stream = ChatStream(keep_text=self.conversation.wants_reply)
        feed_line = stream.feed_line
        for line, now in response_lines(resp):
            feed_line(line, now)
        end = time.perf_counter()
        if not stream.complete:
            raise Unanswered("the stream ended without a finish_reason or [DONE]")
        content = stream.content
        timing = stream.timing(start, end)
        STATE.collector.record_stream(self.tier, model, timing)
        STATE.collector.record_work(
            self.tier, model, turn.number, turn.max_tokens, stream.prompt_tokens, timing.tokens
        )
        self.conversation.answered(turn, stream.text)
        if intended is not None:
            STATE.collector.e2e_from_intended.add((end - intended) * 1e6)
        if len(content) >= 2:
            half = self.cfg.overlap_tolerance_s / 2
            out.interval(wall + content[0] - start, wall + content[-1] - start, half)
        out.ok(model, "POST", name, timing.e2e * 1000, stream.size)
        if timing.ttft is not None:
            out.fire("TTFT", name, timing.ttft * 1000)
        if timing.mean_itl is not None:
            out.fire("ITL", name, timing.mean_itl * 1000)
        if timing.tokens_per_s is not None:
            out.fire("TOK/S", name, timing.tokens_per_s, timing.tokens)
        if self._record is not None:
            self._record.write(
                json.dumps(
                    {
                        "id": stream.stream_id,
                        "start": start,
                        "content": content,
                        "end": end,
                        "usage": stream.usage,
                        "tier": self.tier,
                    }
                )
                + "\n"
            )

    def _plain(
        self, name: str, what: str, path: str, payload: Mapping[str, Any], intended: float | None
    ) -> tuple[dict[str, Any], float, float, float, int] | None:
        """A non-streamed call: the decoded 200 body, start, end, wall start and size; None if refused."""
        resp, start, wall = self.request("POST", path, payload)
        self.outcomes.dispatched(intended, start)
        body = resp.read()
        end = time.perf_counter()
        if resp.status_code not in (200, 202):
            if self.outcomes.refused(resp, name, what, (end - start) * 1000):
                return None
            raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
        decoded = json.loads(body)
        if intended is not None:
            STATE.collector.e2e_from_intended.add((end - intended) * 1e6)
        return decoded, start, end, wall, len(body)

    def chat(self, model: str, intended: float | None) -> None:
        name = f"{self.tier} {model} chat"
        turn = self.conversation.next_turn()
        payload = {"model": model, "messages": turn.messages, "max_tokens": turn.max_tokens}
        got = self._plain(name, "POST /v1/chat/completions", "/v1/chat/completions", payload, intended)
        if got is None:
            self.conversation.refused(turn)
            return
        body, start, end, wall, size = got
        usage = body["usage"]
        tokens = int(usage["completion_tokens"])
        STATE.collector.record_work(
            self.tier, model, turn.number, turn.max_tokens, usage.get("prompt_tokens"), tokens
        )
        self.conversation.answered(turn, str(body["choices"][0]["message"].get("content") or ""))
        e2e = end - start
        stats = STATE.collector.stats(self.tier, model)
        stats.tokens += tokens
        if tokens and e2e > 0:
            stats.tps.add(tokens / e2e * 1000)
            self.outcomes.fire("TOK/S", name, tokens / e2e, tokens)
        tol = self.cfg.overlap_tolerance_s
        self.outcomes.interval(wall, wall + e2e, tol)
        self.outcomes.ok(model, "POST", name, e2e * 1000, size)

    def embed(self, model: str, intended: float | None) -> None:
        name = f"{self.tier} {model} embed"
        payload = {"model": model, "input": self.cfg.prompt}
        got = self._plain(name, "POST /v1/embeddings", "/v1/embeddings", payload, intended)
        if got is None:
            return
        body, start, end, wall, size = got
        if not body["data"][0]["embedding"]:
            raise RequestFailed("empty embedding")
        self.outcomes.interval(wall, wall + end - start, self.cfg.overlap_tolerance_s)
        self.outcomes.ok(model, "POST", name, (end - start) * 1000, size)

    def pipeline(self, template: str) -> None:
        name = f"{self.tier} {template} pipeline"
        payload = {"template": template, "input": dict(self.cfg.pipeline_input)}
        resp, start, wall = self.request("POST", "/v1/pipeline", payload)
        body = resp.read()
        end = time.perf_counter()
        if resp.status_code in (403, 404):
            why = (
                "the tier may not run it (403)"
                if resp.status_code == 403
                else "the target does not offer it (404)"
            )
            STATE.disable(
                self.tier if resp.status_code == 403 else "*",
                "pipeline",
                f"pipeline {template!r} switched off for {self.tier if resp.status_code == 403 else 'all'}"
                f" tiers: {why}",
            )
            return
        if resp.status_code != 200:
            if self.outcomes.refused(resp, name, "POST /v1/pipeline", (end - start) * 1000):
                return
            raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
        decoded = json.loads(body)
        if decoded.get("status") != "completed":
            raise RequestFailed(f"pipeline status {decoded.get('status')!r}")
        self.outcomes.interval(wall, wall + end - start, self.cfg.overlap_tolerance_s)
        self.outcomes.ok(template, "POST", name, (end - start) * 1000, len(body))

    def batch(self, model: str) -> None:
        cfg = self.cfg
        name = f"{self.tier} {model} batch"
        ids = [f"t{i}" for i in range(1, cfg.batch_tasks + 1)]
        single = self.conversation.single
        payload = {"model": model, "tasks": [{"id": i, "messages": single()} for i in ids]}
        resp, start, _ = self.request("POST", "/v1/batch", payload)
        body = resp.read()
        if resp.status_code == 404:
            STATE.disable(
                "*", "batch", "batch switched off: POST /v1/batch answered 404 (the target does not offer it)"
            )
            return
        if resp.status_code == 403:
            STATE.disable(
                self.tier, "batch", f"batch switched off for {self.tier}: POST /v1/batch answered 403"
            )
            return
        if resp.status_code not in (200, 202):
            if self.outcomes.refused(resp, name, "POST /v1/batch", (time.perf_counter() - start) * 1000):
                return
            raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
        batch_id = str(json.loads(body)["batch_id"])
        deadline = start + cfg.batch_timeout
        while True:
            gevent.sleep(cfg.batch_poll_interval)
            poll, _, _ = self.request("GET", f"/v1/batch/{batch_id}", None)
            raw = poll.read()
            if poll.status_code == 429:
                self.outcomes.refused(poll, f"{self.tier} {model} batch-poll", "GET /v1/batch/{id}", 0.0)
            elif poll.status_code != 200:
                raise RequestFailed(f"GET /v1/batch/{{id}} answered {poll.status_code}: {raw[:200]!r}")
            else:
                status = json.loads(raw)
                if status.get("status") == "completed":
                    violation = batch_violation(ids, status, self.tier)
                    if violation is not None:
                        STATE.collector.record_violation(violation)
                        raise RequestFailed(violation.message)
                    break
                if status.get("status") == "failed":
                    raise RequestFailed("batch failed")
            if time.perf_counter() > deadline:
                raise Unanswered(f"batch {batch_id} not completed within {cfg.batch_timeout:g} s")
        self.outcomes.ok(model, "POST", name, (time.perf_counter() - start) * 1000, len(ids))
