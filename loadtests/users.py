"""Locust users: one closed-loop class per tier and an open-loop user. Imports Locust (and gevent).

The LLM calls go through geventhttpclient's ``HTTPClient`` (the client under Locust's FastHttpUser)
directly rather than through ``FastHttpSession``: the start is stamped just before the request is
written, a stream is read line by line as it arrives (``FastResponse.iter_content`` waits for whole
blocks), and the per-request bookkeeping of FastHttpSession is not paid twice. Every measurement
reaches Locust's own statistics through ``events.request.fire`` (web UI, --csv, --html, workers).

Rows in Locust's statistics, per ``<tier> <model> <kind>``:
  POST/GET  end-to-end latency of a successful or failed request (429/503 excluded)
  TTFT      time to first content chunk (ms)          ITL     mean per-token gap of one stream (ms)
  TOK/S     output tokens per second of one request (the "ms" column holds tokens/s)
  429, 503  answers counted apart from failures      TOKEN   task-token exchanges (not request latency)
  DISPATCH  open-loop dispatch delay (actual minus intended send time)
"""

from __future__ import annotations

import json
import random
import select
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import gevent  # type: ignore[import-untyped]
import gevent.monkey  # type: ignore[import-untyped]
from gevent.lock import Semaphore  # type: ignore[import-untyped]
from gevent.pool import Group  # type: ignore[import-untyped]
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPSocketPoolResponse
from locust import FastHttpUser, task
from locust.exception import StopUser

from loadtests import rxstamp
from loadtests.metrics import stream_timing
from loadtests.options import HarnessConfig, key_id
from loadtests.promises import Violation, batch_violation, status_violation
from loadtests.runtime import STATE
from suite.token_segments import unverified_claims

__all__ = ["FreeUser", "InternalUser", "OpenLoopUser", "ProUser", "TierUser"]

_JSON = "application/json"
_CONNECT_TIMEOUT_S = 5.0


class RequestFailed(Exception):
    """A request that did not get the answer it should have (shown in Locust's failure table)."""


class _Unanswered(RequestFailed):
    pass


def _lines(resp: HTTPSocketPoolResponse) -> Iterator[tuple[bytes, float]]:
    """The body's lines, each with the time the read that delivered it got its bytes.

    Reads the socket directly and takes everything the HTTP parser decoded at once, instead of
    ``readline`` (a copy and a front-delete of the buffer per line): cheaper per token, and every line
    of one read gets that read's time, not the time its parsing reached it. That time is the kernel's
    receive stamp where the system gives one (``loadtests.rxstamp``), so a token that waited in the
    socket while this process served other streams is still timed at its arrival; else the time the
    read returned. Uses geventhttpclient's response internals (``_sock``, ``feed``, ``_body_buffer``);
    falls back to ``readline`` without them.
    """
    perf = time.perf_counter
    buf = getattr(resp, "_body_buffer", None)
    if not isinstance(buf, bytearray) or not hasattr(resp, "_sock"):
        while line := resp.readline(b"\n"):
            yield line, perf()
        return
    pending = b""
    now = perf()  # for what arrived together with the headers
    stamped = resp._sock is not None and rxstamp.enable(resp._sock)
    while True:
        if buf:
            data = pending + bytes(buf)
            del buf[:]
            *lines, pending = data.split(b"\n")
            for line in lines:
                yield line, now
        if resp.message_complete:
            if pending:
                yield pending, now
            return
        sock = resp._sock
        if sock is None:
            raise _Unanswered("the connection closed before the end of the stream")
        try:
            if stamped:
                chunk, now = rxstamp.recv(sock, 65536)
            else:
                chunk = sock.recv(65536)
                now = perf()
        except BaseException:
            resp.release()
            raise
        if not chunk:
            resp.release()
            raise _Unanswered("the connection closed before the end of the stream")
        resp.feed(chunk)


_unpatched_poll = gevent.monkey.get_original("select", "poll")
_POLLIN = getattr(select, "POLLIN", 1)


def _idle_socket_alive(sock: Any) -> bool:
    """geventhttpclient's check of a pooled keep-alive socket, without a yield to other greenlets.

    The pool asks, for every request, whether its idle socket is readable (a readable idle socket was
    closed by the server). It asks through the ``select`` that gevent patched in, which with a zero
    timeout still does ``gevent.sleep(0)``: every other ready greenlet runs before this request is
    written, after its start was stamped. At 100 streams that put 0.2 ms at the median and 3-10 ms at
    p99 into every TTFT (measured with tests/bench/load_accuracy.py). The unpatched ``poll`` asks the
    same question of the kernel and returns at once (and, unlike ``select``, has no 1024-descriptor limit).
    """
    try:
        if sock is None or sock.fileno() < 0:
            return False
        poller = _unpatched_poll()
        poller.register(sock.fileno(), _POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _client(url: str, **options: Any) -> HTTPClient:
    client = HTTPClient.from_url(url, **options)
    pool = getattr(client, "_connection_pool", None)
    if pool is not None and hasattr(pool, "_is_socket_alive"):
        pool._is_socket_alive = _idle_socket_alive
    return client


def _cfg() -> HarnessConfig:
    if STATE.config is None:
        raise StopUser("the conform42 harness is not configured (load loadtests/locustfile.py)")
    return STATE.config


def _token_lifetime(token: str) -> float | None:
    """exp - iat of a JWT, read without verifying it (the server does that); None if unreadable."""
    try:
        claims = unverified_claims(token)
        return float(claims["exp"]) - float(claims["iat"])
    except (ValueError, KeyError, TypeError):
        return None


class _Tokens:
    """One task token per API key in this process, refreshed before expiry and once more on a 401."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, Semaphore] = {}

    def reset(self) -> None:
        self._tokens.clear()

    def bearer(self, user: TierUser, force: bool = False, stale: str | None = None) -> str:
        cfg = _cfg()
        key = cfg.keys[user.tier]
        if cfg.profile == "fortytwo":
            return key
        lock = self._locks.setdefault(key, Semaphore())
        with lock:  # one exchange per key at a time: the others wait and reuse it
            cached = self._tokens.get(key)
            now = time.monotonic()
            if cached and not (force and cached[0] == stale) and now < cached[1]:
                return cached[0]
            token = user._exchange(key)
            lifetime = cfg.token_ttl or _token_lifetime(token) or 60.0
            # iat is whole seconds (rounded down), so the token may die up to 1 s early; keep a margin too.
            usable = max(lifetime - 1.0, 0.5)
            self._tokens[key] = (token, now + usable - min(10.0, usable * 0.25))
            return token


TOKENS = _Tokens()


class TierUser(FastHttpUser):
    """A closed-loop user of one tier: picks a task by the configured weights, waits for its answer."""

    abstract = True
    tier: ClassVar[str] = "free"
    network_timeout = 60.0
    connection_timeout = _CONNECT_TIMEOUT_S

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        cfg = _cfg()
        self.cfg = cfg
        self.key_id = key_id(cfg.keys[self.tier])
        self.models = [m for m in cfg.models if self.tier != "free" or m in ("42-logic", "42-general")] or [
            "42-logic"
        ]
        host = str(self.host)  # FastHttpUser's __init__ stops the test when there is no host
        self.http = _client(
            host,
            concurrency=self._pool_size(),
            connection_timeout=_CONNECT_TIMEOUT_S,
            network_timeout=cfg.request_timeout,
            headers={"User-Agent": "conform42-load"},
        )
        token_base = cfg.token_url or host
        self.token_http = _client(
            token_base,
            concurrency=1,
            connection_timeout=_CONNECT_TIMEOUT_S,
            network_timeout=cfg.request_timeout,
        )
        self._backoff = 0.0
        self._events = environment.events.request
        self._record: Any = open(cfg.record_file, "a", encoding="utf-8") if cfg.record_file else None  # noqa: SIM115

    def _pool_size(self) -> int:
        return 2

    def on_stop(self) -> None:
        self.http.close()
        self.token_http.close()
        if self._record is not None:
            self._record.close()

    def wait_time(self) -> float:
        backoff, self._backoff = self._backoff, 0.0
        return self.cfg.think_time + backoff

    # ------------------------------------------------------------------------------------ plumbing
    def _fire(
        self, request_type: str, name: str, ms: float, length: int = 0, exc: Exception | None = None
    ) -> None:
        self._events.fire(
            request_type=request_type,
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
        )

    def _exchange(self, key: str) -> str:
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
        self._fire("TOKEN", f"{self.tier} /api/token", (time.perf_counter() - start) * 1000, 0, exc)
        STATE.collector.token_exchanges += 1
        if exc is not None:
            raise RequestFailed(f"task token exchange failed: {exc}") from exc
        return token

    def _open(
        self, method: str, path: str, body: bytes, bearer: str
    ) -> tuple[HTTPSocketPoolResponse, float, float]:
        headers = {"Authorization": f"Bearer {bearer}", "Content-Type": _JSON, "Accept": "*/*"}
        # Connect (when the pool has no idle connection) before the stamp, so TCP set-up is not counted as
        # time to first token: the stamp is taken just before the request is written.
        # (Only when no idle connection waits: the check is a cheap look at the pool's queue.)
        pool = self.http._connection_pool
        if pool._socket_queue.empty():
            pool.return_socket(pool.get_socket())
        wall = time.time()
        start = time.perf_counter()
        return self.http.request(method, path, body=body, headers=headers), start, wall

    def _request(
        self, method: str, path: str, payload: Mapping[str, Any] | None
    ) -> tuple[HTTPSocketPoolResponse, float, float]:
        """Send with the current token; on a 401 refresh the token once and resend."""
        body = json.dumps(payload).encode() if payload is not None else b""
        bearer = TOKENS.bearer(self)
        resp, start, wall = self._open(method, path, body, bearer)
        if resp.status_code == 401 and self.cfg.profile == "42ai":
            resp.read()
            STATE.collector.token_retries_401 += 1
            bearer = TOKENS.bearer(self, force=True, stale=bearer)
            resp, start, wall = self._open(method, path, body, bearer)
        return resp, start, wall

    def _refused(self, resp: HTTPSocketPoolResponse, name: str, what: str, ms: float) -> bool:
        """Book a 429/503/5xx answer; True when the answer was one of those (the caller stops there)."""
        status = resp.status_code
        if status not in (429, 503) and status < 500:
            return False
        retry_after = resp.get("retry-after")
        retry = retry_after if isinstance(retry_after, str) else None
        violation = status_violation(status, retry, self.tier, self.cfg.profile, what)
        if violation is not None:
            STATE.collector.record_violation(violation)
        if status in (429, 503):
            stats = STATE.collector.stats(self.tier, name.split(" ")[1])
            if status == 429:
                stats.rate_limited += 1
            else:
                stats.unavailable += 1
            stats.requests += 1
            self._fire(str(status), name, ms)
            wait = self.cfg.backoff_429
            if self.cfg.honour_retry_after and retry and retry.strip().isdigit():
                wait = float(retry)
            self._backoff = max(self._backoff, wait)
            return True
        return False

    def _failed(self, model: str, method: str, name: str, ms: float, exc: Exception) -> None:
        stats = STATE.collector.stats(self.tier, model)
        stats.requests += 1
        stats.failures += 1
        self._fire(method, name, ms, 0, exc)

    def _ok(self, model: str, method: str, name: str, ms: float, length: int) -> None:
        stats = STATE.collector.stats(self.tier, model)
        stats.requests += 1
        stats.ok += 1
        stats.e2e.add(ms * 1000)
        self._fire(method, name, ms, length)

    def _interval(self, lo_wall: float, hi_wall: float, shrink: float) -> None:
        STATE.collector.record_interval(self.key_id, self.tier, lo_wall + shrink, hi_wall - shrink)

    def _dispatched(self, intended: float | None, start: float) -> None:
        if intended is not None:
            delay = start - intended
            STATE.collector.dispatch_delay.add(max(delay, 0.0) * 1e6)
            self._fire("DISPATCH", "open-loop dispatch delay", max(delay, 0.0) * 1000)

    def _guard(self, kind: str, model: str, name: str, method: str, body: Callable[[], None]) -> None:
        """Run one request; transport trouble becomes a failure, a timeout also a never-answered violation."""
        start = time.perf_counter()
        try:
            body()
        except _Unanswered as exc:
            STATE.collector.record_violation(Violation("unanswered", None, self.tier, f"{name}: {exc}"))
            self._failed(model, method, name, (time.perf_counter() - start) * 1000, exc)
        except (RequestFailed, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self._failed(model, method, name, (time.perf_counter() - start) * 1000, exc)
        except TimeoutError as exc:  # gevent's socket timeout: no answer within --request-timeout
            STATE.collector.record_violation(
                Violation(
                    "unanswered", None, self.tier, f"{name}: no answer within {self.cfg.request_timeout:g} s"
                )
            )
            self._failed(model, method, name, (time.perf_counter() - start) * 1000, exc)
        except OSError as exc:  # refused, reset, closed mid-answer
            self._failed(model, method, name, (time.perf_counter() - start) * 1000, exc)

    # -------------------------------------------------------------------------------------- tasks
    @task
    def next_task(self) -> None:
        cfg = self.cfg
        kinds = [k for k, w in cfg.weights.items() if w > 0 and not STATE.is_disabled(self.tier, k)]
        if not kinds:
            raise StopUser(f"{self.tier}: no task left to run (all weights 0 or switched off)")
        kind = random.choices(kinds, weights=[cfg.weights[k] for k in kinds])[0]
        self.run_kind(kind)

    def run_kind(self, kind: str, intended: float | None = None) -> None:
        model = random.choice(self.models)
        if kind == "stream":
            self._guard(
                kind, model, f"{self.tier} {model} stream", "POST", lambda: self._stream(model, intended)
            )
        elif kind == "chat":
            self._guard(kind, model, f"{self.tier} {model} chat", "POST", lambda: self._chat(model, intended))
        elif kind == "embed":
            m = self.cfg.embed_model
            self._guard(kind, m, f"{self.tier} {m} embed", "POST", lambda: self._embed(m, intended))
        elif kind == "batch":
            self._guard(kind, model, f"{self.tier} {model} batch", "POST", lambda: self._batch(model))
        elif kind == "pipeline":
            t = self.cfg.pipeline_template
            self._guard(kind, t, f"{self.tier} {t} pipeline", "POST", lambda: self._pipeline(t))

    def _messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.cfg.prompt}]

    def _stream(self, model: str, intended: float | None) -> None:
        name = f"{self.tier} {model} stream"
        payload = {
            "model": model,
            "messages": self._messages(),
            "max_tokens": self.cfg.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        resp, start, wall = self._request("POST", "/v1/chat/completions", payload)
        self._dispatched(intended, start)
        if resp.status_code != 200:
            body = resp.read()
            ms = (time.perf_counter() - start) * 1000
            if not self._refused(resp, name, "POST /v1/chat/completions (stream)", ms):
                raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
            return
        perf = time.perf_counter
        content: list[float] = []
        usage: int | None = None
        finished = done = False
        stream_id = ""
        size = 0
        loads = json.loads
        for line, now in _lines(resp):
            if not line.startswith(b"data:"):
                continue
            size += len(line)
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                continue
            chunk = loads(data)
            if "error" in chunk and not chunk.get("choices"):
                raise RequestFailed(f"error event in the stream: {str(chunk['error'])[:200]}")
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                if delta and delta.get("content"):
                    content.append(now)
                if choice.get("finish_reason"):
                    finished = True
            u = chunk.get("usage")
            if u:
                usage = u.get("completion_tokens")
            if not stream_id:
                stream_id = chunk.get("id", "")
        end = perf()
        if not (done or finished):
            raise _Unanswered("the stream ended without a finish_reason or [DONE]")
        timing = stream_timing(start, content, end, usage)
        STATE.collector.record_stream(self.tier, model, timing)
        if intended is not None:
            STATE.collector.e2e_from_intended.add((end - intended) * 1e6)
        if len(content) >= 2:
            half = self.cfg.overlap_tolerance_s / 2
            self._interval(wall + content[0] - start, wall + content[-1] - start, half)
        self._ok(model, "POST", name, timing.e2e * 1000, size)
        if timing.ttft is not None:
            self._fire("TTFT", name, timing.ttft * 1000)
        if timing.mean_itl is not None:
            self._fire("ITL", name, timing.mean_itl * 1000)
        if timing.tokens_per_s is not None:
            self._fire("TOK/S", name, timing.tokens_per_s, timing.tokens)
        if self._record is not None:
            self._record.write(
                json.dumps(
                    {
                        "id": stream_id,
                        "start": start,
                        "content": content,
                        "end": end,
                        "usage": usage,
                        "tier": self.tier,
                    }
                )
                + "\n"
            )

    def _plain(
        self, name: str, what: str, path: str, payload: Mapping[str, Any], intended: float | None
    ) -> tuple[dict[str, Any], float, float, float, int] | None:
        """A non-streamed call: the decoded 200 body, start, end, wall start and size; None if refused."""
        resp, start, wall = self._request("POST", path, payload)
        self._dispatched(intended, start)
        body = resp.read()
        end = time.perf_counter()
        if resp.status_code not in (200, 202):
            if self._refused(resp, name, what, (end - start) * 1000):
                return None
            raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
        decoded = json.loads(body)
        if intended is not None:
            STATE.collector.e2e_from_intended.add((end - intended) * 1e6)
        return decoded, start, end, wall, len(body)

    def _chat(self, model: str, intended: float | None) -> None:
        name = f"{self.tier} {model} chat"
        payload = {"model": model, "messages": self._messages(), "max_tokens": self.cfg.max_tokens}
        got = self._plain(name, "POST /v1/chat/completions", "/v1/chat/completions", payload, intended)
        if got is None:
            return
        body, start, end, wall, size = got
        tokens = int(body["usage"]["completion_tokens"])
        e2e = end - start
        stats = STATE.collector.stats(self.tier, model)
        stats.tokens += tokens
        if tokens and e2e > 0:
            stats.tps.add(tokens / e2e * 1000)
            self._fire("TOK/S", name, tokens / e2e, tokens)
        tol = self.cfg.overlap_tolerance_s
        self._interval(wall, wall + e2e, tol)
        self._ok(model, "POST", name, e2e * 1000, size)

    def _embed(self, model: str, intended: float | None) -> None:
        name = f"{self.tier} {model} embed"
        payload = {"model": model, "input": self.cfg.prompt}
        got = self._plain(name, "POST /v1/embeddings", "/v1/embeddings", payload, intended)
        if got is None:
            return
        body, start, end, wall, size = got
        if not body["data"][0]["embedding"]:
            raise RequestFailed("empty embedding")
        self._interval(wall, wall + end - start, self.cfg.overlap_tolerance_s)
        self._ok(model, "POST", name, (end - start) * 1000, size)

    def _pipeline(self, template: str) -> None:
        name = f"{self.tier} {template} pipeline"
        payload = {"template": template, "input": dict(self.cfg.pipeline_input)}
        resp, start, wall = self._request("POST", "/v1/pipeline", payload)
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
            if self._refused(resp, name, "POST /v1/pipeline", (end - start) * 1000):
                return
            raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
        decoded = json.loads(body)
        if decoded.get("status") != "completed":
            raise RequestFailed(f"pipeline status {decoded.get('status')!r}")
        self._interval(wall, wall + end - start, self.cfg.overlap_tolerance_s)
        self._ok(template, "POST", name, (end - start) * 1000, len(body))

    def _batch(self, model: str) -> None:
        cfg = self.cfg
        name = f"{self.tier} {model} batch"
        ids = [f"t{i}" for i in range(1, cfg.batch_tasks + 1)]
        payload = {"model": model, "tasks": [{"id": i, "messages": self._messages()} for i in ids]}
        resp, start, _ = self._request("POST", "/v1/batch", payload)
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
            if self._refused(resp, name, "POST /v1/batch", (time.perf_counter() - start) * 1000):
                return
            raise RequestFailed(f"HTTP {resp.status_code}: {body[:200]!r}")
        batch_id = str(json.loads(body)["batch_id"])
        deadline = start + cfg.batch_timeout
        while True:
            gevent.sleep(cfg.batch_poll_interval)
            poll, _, _ = self._request("GET", f"/v1/batch/{batch_id}", None)
            raw = poll.read()
            if poll.status_code == 429:
                self._refused(poll, f"{self.tier} {model} batch-poll", "GET /v1/batch/{id}", 0.0)
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
                raise _Unanswered(f"batch {batch_id} not completed within {cfg.batch_timeout:g} s")
        self._ok(model, "POST", name, (time.perf_counter() - start) * 1000, len(ids))


class FreeUser(TierUser):
    tier = "free"


class ProUser(TierUser):
    tier = "pro"


class InternalUser(TierUser):
    tier = "internal"


class OpenLoopUser(TierUser):
    """Sends at a fixed or Poisson arrival rate, whether or not earlier requests have finished.

    Each arrival has an intended send time on the schedule; the request greenlet stamps its actual
    start, and the difference (dispatch delay) is recorded: when it grows, the load generator, not
    the server, is the bottleneck (coordinated omission made visible). Latency from the intended time
    is recorded as well.
    """

    tier = "internal"

    def __init__(self, environment: Any) -> None:
        type(self).tier = _cfg().open_loop_tier
        super().__init__(environment)
        self.inflight = Group()

    def _pool_size(self) -> int:
        return max(2, self.cfg.open_loop_max_in_flight)

    def wait_time(self) -> float:
        return 0.0

    def on_stop(self) -> None:
        self.inflight.kill(block=False)
        super().on_stop()

    @task
    def next_task(self) -> None:
        cfg = self.cfg
        if cfg.open_loop_rate <= 0:
            raise StopUser("open loop off (--open-loop-rate 0)")
        mean_gap = 1.0 / cfg.open_loop_rate
        gap: Callable[[], float] = (
            (lambda: random.expovariate(cfg.open_loop_rate))
            if cfg.open_loop_arrival == "poisson"
            else (lambda: mean_gap)
        )
        intended = time.perf_counter()
        collector = STATE.collector
        while True:
            intended += gap()
            delay = intended - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            STATE.collector.arrivals += 1
            if len(self.inflight) >= cfg.open_loop_max_in_flight:
                collector.dropped_arrivals += 1
                continue
            self.inflight.spawn(self.run_kind, cfg.open_loop_kind, intended)
