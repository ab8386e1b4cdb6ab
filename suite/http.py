"""The suite's HTTP client: every request has a timeout, none is retried, task tokens are managed.

``Api`` is what behaviour tests use. It knows the two profiles' auth schemes (42ai: exchange the API key
for a 60 s task token at ``POST /api/token`` and refresh it before it expires; fortytwo: the key is the
bearer), records the last request so a failure can print a curl line, and maps transport failures to
outcomes: a target that cannot be reached at all is an *Error* (``TargetUnreachable``); one that
accepts the connection and then times out, resets or sends garbage does not conform (a *Fail*). A test
that only needs a task token and gets none has ``TokenExchangeFailed`` (an *Error*): judging the
exchange is the AUTH tests' job, through ``exchange``.

"No retries" has one documented exception, the *patience* rule: 000 documents 503 + ``Retry-After`` for
a busy server and 429 + ``Retry-After`` for a key at its concurrency limit. A 503 that carries
``Retry-After``, and a 429 of a key while one of the suite's own requests of that key is open or has
just ended (the server may not have seen it end yet: a proxy relays the end later), are not verdicts on
the request: ``Api`` waits as told (bounded) and sends it again. Every answer still reaches the
response hooks (so LIMIT-011 judges every 503 seen), and a target that stays busy past the bounds ends
the test as Skip (``TargetBusy``), never as a Fail of whatever the test judges. The tests that judge
those answers themselves (the tier limits, the KV-cache 503) turn the rule off with ``Api.impatient``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx

from suite.checks import ConformanceFailure, TargetUnreachable, TokenExchangeFailed
from suite.liveness import Liveness, endpoint
from suite.pace import Pace, measure_pace
from suite.patience import Patience
from suite.target import TOKEN_PATH, Target

__all__ = ["TOKEN_PATH", "Api", "task_token"]

# Refresh a cached task token this long before its documented expiry, so no test races the clock.
_REFRESH_MARGIN_S = 15.0


def _transport_failure(exc: httpx.TransportError, request: httpx.Request | None, timeout: float) -> Exception:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol):
        return TargetUnreachable(f"cannot reach the target: {exc!r}")
    if isinstance(exc, httpx.TimeoutException):
        return ConformanceFailure(
            "the target did not answer in time",
            expected=f"a response within the request timeout ({timeout:g} s)",
            received=f"{type(exc).__name__}: {exc}",
            request=request,
        )
    return ConformanceFailure(
        "the target broke the HTTP exchange",
        expected="a well-formed HTTP response",
        received=f"{type(exc).__name__}: {exc}",
        request=request,
    )


def task_token(response: httpx.Response) -> str | None:
    """The non-empty ``task_token`` string of a 2xx exchange answer, or None (any other answer).

    000 shows the exchange's body and names no status code, so any success status (200, 201 Created, ...)
    with a ``task_token`` string is a token (AUTH-001)."""
    if not response.is_success:
        return None
    try:
        body = response.json()
    except ValueError:  # not JSON (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return None
    token = body.get("task_token") if isinstance(body, dict) else None
    return token if isinstance(token, str) and token else None


class Api:
    """A synchronous client for one target; thread-safe for the concurrency tests."""

    def __init__(
        self,
        target: Target,
        *,
        transport: httpx.BaseTransport | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        self.target = target
        self.timeout = target.timeout
        self._client = httpx.Client(
            timeout=httpx.Timeout(target.timeout),
            follow_redirects=False,
            # The limit tests hold many streams open at once.
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            transport=transport,
        )
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        #: The target's measured speed (set by the session's ``pace`` fixture): requests that ask for
        #: generation get a deadline that follows their ``max_tokens``; None: the fixed timeout.
        self.pace: Pace | None = None
        self._local = threading.local()
        #: The patience rule's state: busy answers waited out, the suite's own open requests per tier.
        self.patience = Patience(lambda: self.pace.margin_s if self.pace is not None else 0.0)
        #: Which endpoints stopped answering (``suite.liveness``); shared by the clients of one run.
        self.liveness = liveness or Liveness()

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def last_request(self) -> httpx.Request | None:
        """The last request this thread sent (for "Reproduce with:")."""
        request: httpx.Request | None = getattr(self._local, "request", None)
        return request

    def on_response(self, hook: Callable[[httpx.Response], None]) -> None:
        """Call ``hook`` with every response this client receives, a streamed one as soon as its headers
        are in (httpx's response event hook): for observers of the whole session, such as a log of every
        error answer, that must see what each test's own requests got."""
        self._client.event_hooks["response"].append(hook)

    # -- patience ----------------------------------------------------------------------------
    def impatient(self, *statuses: int) -> AbstractContextManager[None]:
        """Turn the patience rule off for ``statuses`` (default 429 and 503), for every thread, while a
        test judges those answers itself (``suite.patience``)."""
        return self.patience.off(*statuses)

    @property
    def wait_deadline(self) -> float | None:
        return self.patience.deadline

    @wait_deadline.setter
    def wait_deadline(self, value: float | None) -> None:
        self.patience.deadline = value

    def measure_pace(self, headers: Mapping[str, str]) -> Pace:
        """Time one streamed chat completion sent with ``headers`` (``suite.pace.measure_pace``).

        It goes out on this client's connections with the fixed timeout as its deadline: the deadlines
        that follow ``max_tokens`` are derived from what it measures.
        """
        return measure_pace(
            self._client,
            self.target.base_url + "/v1/chat/completions",
            dict(headers),
            self.target.chat_model,
            floor_s=self.target.timeout,
            path_url=self.target.base_url + "/v1/models",
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth --------------------------------------------------------------------------------
    def exchange(self, api_key: str | None, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """``POST /api/token`` with ``api_key`` as the bearer (None: no Authorization header)."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if api_key is not None:
            sent["Authorization"] = f"Bearer {api_key}"
        return self.send("POST", self.target.token_base + TOKEN_PATH, headers=sent)

    def new_token(self, tier: str) -> str:
        """A freshly exchanged task token for ``tier`` (fortytwo profile: the API key itself).

        For tests that *use* a token: an exchange that gives none raises ``TokenExchangeFailed`` (an
        Error of the calling test, which set out to judge something else). The AUTH tests judge the
        exchange itself through ``exchange`` and fail the target for it.
        """
        key = self.target.key(tier)
        if self.target.profile == "fortytwo":
            return key
        url = self.target.token_base + TOKEN_PATH
        try:
            response = self.exchange(key)
        except ConformanceFailure as exc:  # timed out or broke the exchange; unreachable stays unreachable
            raise TokenExchangeFailed(
                f"no task token for the {tier} tier: POST {url}: {exc.message} ({exc.received})"
            ) from exc
        token = task_token(response)
        if token is None:
            status = response.status_code
            what = "without a task_token string" if response.is_success else "instead of a 2xx"
            raise TokenExchangeFailed(
                f"no task token for the {tier} tier: POST {url} answered HTTP {status} {what}",
                response=response,
            )
        return token

    def token(self, tier: str = "free") -> str:
        """A cached task token for ``tier``, refreshed well before its 60 s expiry."""
        with self._lock:
            cached = self._tokens.get(tier)
            if cached and time.monotonic() < cached[1]:
                return cached[0]
        token = self.new_token(tier)
        with self._lock:
            self._tokens[tier] = (token, time.monotonic() + self.target.token_ttl_s - _REFRESH_MARGIN_S)
        return token

    def auth(self, tier: str | None = "free") -> dict[str, str]:
        return {} if tier is None else {"Authorization": f"Bearer {self.token(tier)}"}

    # -- requests ----------------------------------------------------------------------------
    def _build(
        self,
        method: str,
        url: str,
        *,
        tier: str | None,
        json: Any,
        content: bytes | str | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> httpx.Request:
        if not url.startswith(("http://", "https://")):
            url = self.target.base_url + url
        sent = {**self.auth(tier), **(headers or {})}
        if timeout is None:
            timeout = self._deadline(url, json)
        extensions = {"timeout": httpx.Timeout(timeout).as_dict()} if timeout is not None else None
        request = self._client.build_request(
            method, url, json=json, content=content, headers=sent, extensions=extensions
        )
        self._local.request = request
        return request

    def _deadline(self, url: str, body: Any) -> float | None:
        """The deadline the work asked for (chat, pipeline), or None before the pace is known."""
        return None if self.pace is None else self.pace.request_deadline(httpx.URL(url).path, body)

    def _open(self, request: httpx.Request, timeout: float | None) -> httpx.Response:
        """Send ``request`` and return once its status line is in (the body unread), keeping the
        liveness count (``suite.liveness``): a stopped endpoint is not sent to; no status line in time,
        or a refused connection, is a strike; any status line an answer."""
        key = endpoint(request.method, request.url)
        self.liveness.check(key)
        try:
            response = self._client.send(request, stream=True)
        except (httpx.TimeoutException, httpx.ConnectError) as exc:
            if isinstance(exc, httpx.ConnectError):
                self.liveness.struck(key, f"connection failed: {exc}")
            elif not isinstance(exc, httpx.PoolTimeout):  # the suite's own pool, not the target
                waited = (request.extensions.get("timeout") or {}).get("read") or timeout or self.timeout
                self.liveness.struck(key, f"no status line within {waited:g} s ({type(exc).__name__})")
            raise
        self.liveness.answered(key)
        return response

    def send(
        self,
        method: str,
        url: str,
        *,
        tier: str | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        patient: bool = True,
    ) -> httpx.Response:
        """Send one request (``url`` absolute or a path on the target) and read the whole body; a busy
        answer is waited out and sent again (the patience rule, module docstring) unless ``patient`` is
        False (housekeeping requests, which must not wait)."""

        def attempt(first: bool) -> tuple[httpx.Response, bool]:
            request = self._build(
                method, url, tier=tier, json=json, content=content, headers=headers, timeout=timeout
            )
            busy = self.patience.recent(tier, first)
            try:
                with self.patience.counted(tier):
                    response = self._open(request, timeout)
                    try:
                        response.read()
                    finally:
                        response.close()
                    return response, busy
            except httpx.TransportError as exc:
                raise _transport_failure(exc, request, timeout or self.timeout) from exc

        return self.patience.patiently(attempt) if patient else attempt(True)[0]

    def request(
        self,
        method: str,
        path: str,
        *,
        tier: str | None = "free",
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Like ``send``, authenticated as ``tier`` by default (None: no Authorization header)."""
        return self.send(
            method, path, tier=tier, json=json, content=content, headers=headers, timeout=timeout
        )

    def post(
        self, path: str, json: Any = None, *, tier: str | None = "free", **kwargs: Any
    ) -> httpx.Response:
        return self.request("POST", path, json=json, tier=tier, **kwargs)

    def get(self, path: str, *, tier: str | None = "free", **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, tier=tier, **kwargs)

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        tier: str | None = "free",
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        trace: Callable[[str, Mapping[str, Any]], None] | None = None,
        patient: bool = True,
    ) -> Iterator[httpx.Response]:
        """Open a streaming response; the body is read by the caller (see ``suite.sse``).

        ``trace`` receives httpcore's trace events (e.g. ``http11.send_request_body.complete``: the
        request is with the target's kernel), for tests that must know when a request was sent. A busy
        answer is waited out before the response is yielded (the patience rule), unless ``patient`` is
        False: held and burst streams judge every answer they get themselves.
        """
        sent: list[httpx.Request] = []

        def attempt(first: bool) -> tuple[httpx.Response, bool]:
            request = self._build(
                method, path, tier=tier, json=json, content=None, headers=headers, timeout=timeout
            )
            if trace is not None:
                request.extensions["trace"] = trace
            sent.append(request)
            busy = self.patience.recent(tier, first, own=1)  # the stream counts itself as open already
            try:
                return self._open(request, timeout), busy
            except httpx.TransportError as exc:
                raise _transport_failure(exc, request, timeout or self.timeout) from exc

        with self.patience.counted(tier):
            response = self.patience.patiently(attempt, close=True) if patient else attempt(True)[0]
            try:
                yield response
            except httpx.TransportError as exc:
                raise _transport_failure(exc, sent[-1], timeout or self.timeout) from exc
            finally:
                response.close()
