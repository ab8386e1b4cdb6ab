"""Property tests of the OpenAPI specs with schemathesis 4: schema, auth, hooks and bounds.

``suite/conformance/test_properties.py`` uses this module. The schema is built at test time from the
``Target`` (its profile picks ``specs/<profile>.openapi.yaml``), because the target only exists once
the plugin has resolved the options or started the bundled reference server.

* **Servers.** The 42ai spec puts ``POST /api/token`` on another host than ``/v1``; both are rewritten so
  every operation hits the target: ``/v1/*`` the base URL, ``/api/token`` ``Target.token_base``.
* **Auth.** A schemathesis auth provider asks the suite's ``Api`` for a task token of the strongest tier
  with a key (internal, pro, free: the model rules of a weaker tier would only add documented 403s), so
  tokens are exchanged once and refreshed before their 60 s expiry; ``/api/token`` gets the raw API key.
  On the fortytwo profile the key is the bearer.
* **Hooks.** Generated data is kept cheap for a real inference server: ``max_tokens`` and
  ``max_completion_tokens`` are capped, ``stream`` is false, a batch holds at most two tasks. Positive
  requests name the target's model half of the time, or nearly every valid request would be a 404.
* **Bounds.** ``CONFORM42_PROPERTY_EXAMPLES`` examples per operation and run (default 10), a wall-clock
  budget for the whole property part (``CONFORM42_PROPERTY_MAX_TIME`` seconds, default 80), no
  shrinking, no example database, derandomised unless ``CONFORM42_PROPERTY_SEED`` is set.
* **Secrets.** schemathesis's output sanitisation replaces the Authorization header in its curl line;
  ``redact_failure`` also removes API keys and task tokens from the message text (``suite.curl.scrub``).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import Case as _Case
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import BaseSchema

from suite.checks import ConformanceFailure, TargetUnreachable, disabled
from suite.curl import scrub
from suite.http import TOKEN_PATH, Api
from suite.openapi import load_spec
from suite.samples import PIPELINE_TEMPLATE, PNG_DATA_URL
from suite.target import Target

# schemathesis's Case is generic over its operation types; the suite never looks inside those.
Case = _Case[Any]

__all__ = [
    "ALL_CHECKS",
    "NEGATIVE_CHECKS",
    "OPERATIONS",
    "Budget",
    "Clock",
    "ExchangeLog",
    "auth_tier",
    "build_schema",
    "call_kwargs",
    "check_functions",
    "envelope_check",
    "prepared_spec",
    "redact_failure",
    "run_operation",
    "run_stateful",
]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _operations(profile: str) -> tuple[str, ...]:
    spec = load_spec(profile)
    return tuple(f"{method.upper()} {path}" for path, item in spec.get("paths", {}).items()
                 for method in item if method in _METHODS)


#: Every operation of the 42ai spec (the fortytwo spec declares a subset): the tests are parametrised by
#: these labels at collection time, when the profile is not known yet.
OPERATIONS: tuple[str, ...] = _operations("42ai")

#: Checks that judge what a server does with invalid input.
NEGATIVE_CHECKS: tuple[str, ...] = ("not_a_server_error", "negative_data_rejection")

#: Every built-in check that looks at one exchange. The stateful ones (use_after_free,
#: ensure_resource_availability) need a scenario and run in the stateful test.
ALL_CHECKS: tuple[str, ...] = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
)

# Small generation limits: a real vLLM engine on two CPU cores generates a few tokens per second.
MAX_TOKENS_CAP = 8
MAX_BATCH_TASKS = 2
_TIER_PREFERENCE = ("internal", "pro", "free")


# ------------------------------------------------------------------------------------------- bounds


def _env_number(name: str, default: float, env: Mapping[str, str]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be > 0, not {raw!r}")
    return value


@dataclass(frozen=True)
class Budget:
    """How much generation the property tests may do (from the environment)."""

    examples: int = 10
    max_time_s: float = 80.0
    seed: int | None = None
    stateful_steps: int = 6

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Budget:
        env = os.environ if env is None else env
        seed_raw = env.get("CONFORM42_PROPERTY_SEED", "").strip()
        try:
            seed = int(seed_raw) if seed_raw else None
        except ValueError:
            raise ValueError(f"CONFORM42_PROPERTY_SEED must be an integer, not {seed_raw!r}") from None
        return cls(
            examples=int(_env_number("CONFORM42_PROPERTY_EXAMPLES", cls.examples, env)),
            max_time_s=_env_number("CONFORM42_PROPERTY_MAX_TIME", cls.max_time_s, env),
            seed=seed,
        )

    def settings(self, max_examples: int | None = None) -> hypothesis.settings:
        return hypothesis.settings(
            max_examples=max_examples or self.examples,
            deadline=None,  # network latency is not the code under test
            derandomize=self.seed is None,
            database=None,  # no .hypothesis folder in the user's checkout, no replayed examples
            # No shrinking: each shrink step is another request to a slow server; the first failing
            # example is reported as found.
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            verbosity=hypothesis.Verbosity.quiet,
        )


@dataclass
class Clock:
    """The shared wall-clock budget of the property part of one run."""

    budget: Budget
    runs: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    def remaining(self) -> float:
        return self.budget.max_time_s - (time.monotonic() - self.started)

    def slot(self) -> float:
        """Seconds the next run may take: an equal share of what is left, so later runs are not starved."""
        left = max(self.runs - self.done, 1)
        return self.remaining() / left

    def finished_one(self) -> None:
        self.done += 1


# --------------------------------------------------------------------------------------------- spec


def prepared_spec(target: Target) -> dict[str, Any]:
    """The profile's spec with every server pointed at the target (per-path servers included)."""
    spec = copy.deepcopy(load_spec(target.profile))
    spec["servers"] = [{"url": target.base_url}]
    for path, item in spec.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        if "servers" in item:
            # Only the token exchange lives elsewhere in the documents (000: the-42-lab.com/api/token).
            item["servers"] = [{"url": target.token_base if path == TOKEN_PATH else target.base_url}]
        for operation in item.values():
            if isinstance(operation, dict) and "servers" in operation:
                operation["servers"] = [{"url": target.token_base if path == TOKEN_PATH else target.base_url}]
    return spec


def auth_tier(target: Target) -> str:
    """The strongest tier with a key; Disabled when no key is given at all."""
    for tier in _TIER_PREFERENCE:
        if target.has_key(tier):
            return tier
    disabled("no API key for any tier (--key-internal, --key-pro or --key-free)")


def _sanitization(target: Target) -> dict[str, Any]:
    return {
        "enabled": True,
        # Header and body members whose values schemathesis replaces in its output (curl line included).
        "keys-to-sanitize": ["authorization", "x-api-key", "api_key", "apikey", "task_token", "token",
                             "access_token", "cookie", "set-cookie", "proxy-authorization"],
        "sensitive-markers": ["token", "key", "secret", "auth", "passw"],
        "replacement": "[Filtered]",
    }


def _config(target: Target, budget: Budget) -> SchemathesisConfig:
    data: dict[str, Any] = {
        # The /v1 host; the token exchange gets its own base URL per call (``call_kwargs``): schemathesis
        # sends every case to the configured base URL and ignores per-path servers when one is set.
        "base-url": target.base_url,
        "request-timeout": target.timeout,
        "output": {"sanitization": _sanitization(target)},
        "generation": {
            "max-examples": budget.examples,
            "no-shrink": True,
            "deterministic": budget.seed is None,
            "database": "none",
        },
        "phases": {"stateful": {"max-steps": budget.stateful_steps}},
        "warnings": False,
    }
    if budget.seed is not None:
        data["seed"] = budget.seed
    return SchemathesisConfig.from_dict(data)


def call_kwargs(target: Target, case: Case) -> dict[str, Any]:
    """Transport arguments of one call: POST /api/token goes to ``Target.token_base``."""
    return {"base_url": target.token_base} if case.operation.path == TOKEN_PATH else {}


# --------------------------------------------------------------------------------------------- auth


def _register_auth(schema: BaseSchema, target: Target, api: Api, tier: str) -> None:
    key = target.key(tier)

    class TaskTokenAuth:
        """``tier``'s task token for /v1 (cached, refreshed by ``Api.token``); for /api/token the key."""

        def get(self, case: Case, ctx: schemathesis.AuthContext) -> str:
            if case.operation.path == TOKEN_PATH or target.profile == "fortytwo":
                return key
            return api.token(tier)

        def set(self, case: Case, data: str, ctx: schemathesis.AuthContext) -> None:
            headers = case.headers if case.headers is not None else {}
            headers["Authorization"] = f"Bearer {data}"
            case.headers = headers

    # refresh_interval None: no second cache on top of Api's, which knows the 60 s expiry. retry_on []:
    # a 401 to a fresh token is a finding, not a reason to fetch another token and try again.
    schema.auth(refresh_interval=None, retry_on=[])(TaskTokenAuth)


# -------------------------------------------------------------------------------------------- hooks


def _is_positive(case: Case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _cheap_body(body: dict[str, Any], path: str) -> dict[str, Any]:
    """Valid or not, no generated request may ask for a long generation or a stream."""
    body = dict(body)
    if path == "/v1/chat/completions" and "max_tokens" not in body and "max_completion_tokens" not in body:
        # Without a limit the server picks one (up to the context size): minutes on a CPU engine. The
        # spec declares max_tokens, so adding it keeps a valid body valid and an invalid one invalid.
        body["max_tokens"] = MAX_TOKENS_CAP
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        # Only integers above the cap change: the cap keeps a valid value valid and an invalid one
        # (a string, a float) is left for the server to reject.
        # JSON Schema counts 16.0 as an integer, so integral floats above the cap are capped too.
        whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
        if whole and isinstance(value, int | float) and value > MAX_TOKENS_CAP:
            body[name] = MAX_TOKENS_CAP
    if isinstance(body.get("stream"), bool):
        body["stream"] = False
    tasks = body.get("tasks")
    if isinstance(tasks, list) and len(tasks) > MAX_BATCH_TASKS:
        body["tasks"] = tasks[:MAX_BATCH_TASKS]
    return body


def _complete_messages(messages: Any) -> Any:
    """Positive data only: give each message the role and content 001 requires.

    The fortytwo spec keeps 002's Message verbatim (nothing required) and says in its x-interpretation
    that a server may reject a message missing either with 400 or 422, so such data is not used to test
    acceptance.
    """
    if not isinstance(messages, list):
        return messages
    completed = []
    for message in messages:
        if isinstance(message, dict):
            message = {"role": "user", "content": "Hello!", **message}
        completed.append(message)
    return completed


def _unique_task_ids(tasks: list[Any]) -> list[Any]:
    """Positive data only: give every task of a batch its own non-empty id.

    Results are keyed by task id, so the spec says ids "should be unique within the batch" (and the
    reference server answers repeats with 422), but JSON Schema cannot require uniqueness of one
    property across array items; schemathesis' valid data may repeat an id, which is then not valid.
    A repeated (or empty, or non-string) id is replaced by one that no other task uses.
    """
    taken = {t["id"] for t in tasks if isinstance(t, dict) and isinstance(t.get("id"), str) and t["id"]}
    seen: set[str] = set()
    unique: list[Any] = []
    for number, task in enumerate(tasks, start=1):
        if isinstance(task, dict):
            task_id = task.get("id")
            if not isinstance(task_id, str) or not task_id or task_id in seen:
                candidates = (f"t{number}-{n}" for n in range(len(tasks) + 1))
                task_id = next(c for c in candidates if c not in taken)
                taken.add(task_id)
                task = {**task, "id": task_id}
            seen.add(task_id)
        unique.append(task)
    return unique


def _register_hooks(schema: BaseSchema, target: Target) -> None:
    chat_paths = {"/v1/chat/completions", "/v1/batch"}

    def flatmap_case(context: schemathesis.HookContext, case: Case) -> st.SearchStrategy[Case]:
        if not isinstance(case.body, dict):
            return st.just(case)
        body = _cheap_body(case.body, case.operation.path)
        if not _is_positive(case):
            case.body = body
            return st.just(case)
        if "messages" in body:
            body["messages"] = _complete_messages(body["messages"])
        if isinstance(body.get("response_format"), dict):
            # The spec can require a `type`, not "a JSON Schema a grammar engine can compile": generated
            # json_schema payloads are noise any engine may refuse, so valid data asks for plain text.
            body["response_format"] = {"type": "text"}
        if isinstance(body.get("tasks"), list):
            body["tasks"] = _unique_task_ids([
                {**task, "messages": _complete_messages(task.get("messages"))} if isinstance(task, dict)
                else task
                for task in body["tasks"]
            ])
        path = case.operation.path
        if path == "/v1/pipeline":
            def with_template(use_known: bool) -> Case:
                # The documented template needs a real image; random input for it is invalid in a way
                # the spec cannot express. An unknown (generated) template name is a declared 404.
                known = {"template": PIPELINE_TEMPLATE, "input": {"image_url": PNG_DATA_URL}}
                # The documented template with any other input (000's own example included: an https
                # image the target may be unable to fetch) gets the data: URL image as well.
                use_known = use_known or body.get("template") == PIPELINE_TEMPLATE
                case.body = {**body, **known} if use_known else body
                return case

            return st.booleans().map(with_template)
        model = target.chat_model if path in chat_paths else target.embed_model if (
            path == "/v1/embeddings") else None
        if model is None or "model" not in body:
            case.body = body
            return st.just(case)

        def with_model(use_known: bool) -> Case:
            case.body = {**body, "model": model} if use_known else body
            return case

        # Half the time a model the target serves, so valid requests also reach generation and their
        # 200 bodies get checked; the other half keeps the generated ID (an unknown one is a 404).
        return st.booleans().map(with_model)

    schema.hook("flatmap_case")(flatmap_case)


# ------------------------------------------------------------------------------------------- schema


def build_schema(target: Target, api: Api, budget: Budget) -> BaseSchema:
    """The schemathesis schema of ``target``'s profile, with servers, auth, hooks and bounds applied."""
    schema = schemathesis.openapi.from_dict(prepared_spec(target), config=_config(target, budget))
    _register_auth(schema, target, api, auth_tier(target))
    _register_hooks(schema, target)
    return schema


def check_functions(names: Iterable[str]) -> list[Callable[..., Any]]:
    load_all_checks()
    return list(CHECKS.get_by_names(list(names)))


def envelope_check() -> Callable[..., Any]:
    """response_schema_conformance restricted to error responses other than 422.

    Those responses are declared with the error envelope in both specs (400, 401, 403, 404, 429, 500,
    503), so a failure here is exactly a broken envelope (ERR-001 / ERR-002); 2xx and 422 bodies are
    judged by the spec-conformance test instead.
    """
    (schema_check,) = check_functions(["response_schema_conformance"])

    def error_envelope(ctx: Any, response: Any, case: Case) -> bool | None:
        if response.status_code < 400 or response.status_code == 422:
            return None
        result: bool | None = schema_check(ctx, response, case)
        return result

    return error_envelope


# ------------------------------------------------------------------------------------------ failures


def _as_httpx(request: requests.PreparedRequest) -> httpx.Request:
    body = request.body
    content = body.encode("utf-8") if isinstance(body, str) else body if isinstance(body, bytes) else None
    headers = {name: value if isinstance(value, str) else value.decode("latin-1")
               for name, value in request.headers.items()}
    return httpx.Request(str(request.method), str(request.url), headers=headers, content=content)


def _as_httpx_response(response: schemathesis.Response) -> httpx.Response:
    headers = [(name, value) for name, values in response.headers.items() for value in values]
    return httpx.Response(response.status_code, headers=headers, content=response.content,
                          request=_as_httpx(response.request))


def redact_failure(
    failure: FailureGroup, keys: Mapping[str, str], response: schemathesis.Response | None
) -> NoReturn:
    """Raise schemathesis's failure as the suite's ``ConformanceFailure``, secrets removed.

    The message names the failed checks, "Expected" holds schemathesis's explanation, every API key and
    task token replaced; the failing exchange goes along so the plugin prints the response and a
    "Reproduce with:" line with ``$CONFORM42_KEY_<TIER>`` / ``$CONFORM42_TASK_TOKEN``.
    """
    __tracebackhide__ = True
    failures = list(failure.exceptions)
    label = str(getattr(failures[0], "operation", "") or "") if failures else ""
    titles = ", ".join(sorted({f"{getattr(f, 'title', type(f).__name__)} ({getattr(f, 'code', '?')})"
                               for f in failures}))
    details = "\n".join(str(getattr(f, "message", f)).strip() for f in failures)
    raise ConformanceFailure(
        scrub(f"{label}: schemathesis: {titles}" if label else f"schemathesis: {titles}", keys),
        expected=scrub(details.replace("\n", "; "), keys) or "a response the spec allows",
        received=f"HTTP {response.status_code}" if response is not None else "(no response)",
        response=_as_httpx_response(response) if response is not None else None,
    )


@dataclass
class ExchangeLog:
    """What a run saw: statuses per generation mode, so a test can say whether it proved anything."""

    statuses: dict[str, list[int]] = field(default_factory=lambda: {"positive": [], "negative": []})
    stopped_by_clock: bool = False
    #: An example failed: its replay must run even past the deadline.
    failed: bool = False

    #: The last exchange: with shrinking off, the one a failure is about.
    last: schemathesis.Response | None = None

    def record(self, case: Case, response: schemathesis.Response) -> None:
        self.last = response
        self.statuses["positive" if _is_positive(case) else "negative"].append(response.status_code)

    @property
    def calls(self) -> int:
        return sum(len(v) for v in self.statuses.values())


# --------------------------------------------------------------------------------------------- runs


def _first_failure_group(group: BaseExceptionGroup[Any]) -> FailureGroup | None:
    for member in group.exceptions:
        if isinstance(member, FailureGroup):
            return member
        if isinstance(member, BaseExceptionGroup) and (found := _first_failure_group(member)):
            return found
    return None


def _run_redacted(run: Callable[[], None], target: Target, log: ExchangeLog) -> None:
    """Run a hypothesis test; a schemathesis failure becomes a redacted ``ConformanceFailure``."""
    __tracebackhide__ = True
    try:
        run()
    except FailureGroup as exc:
        failure: FailureGroup | None = exc
    except BaseExceptionGroup as exc:
        # Hypothesis raises FlakyFailure (a group) when an example failed once and passed on its replay:
        # the target answered the same request differently. The failed answer is the evidence.
        failure = _first_failure_group(exc)
        if failure is None:
            raise
    else:
        failure = None
    if failure is not None:
        # Outside the except block, so the report does not chain the original (unredacted) exception.
        redact_failure(failure, target.keys, log.last)


def run_operation(
    schema: BaseSchema,
    label: str,
    *,
    modes: Sequence[GenerationMode],
    checks: Sequence[Callable[..., Any]],
    target: Target,
    budget: Budget,
    seconds: float,
) -> ExchangeLog:
    """Generate cases of ``label`` in ``modes``, send each and validate it with ``checks``.

    The first failing example fails the run (schemathesis's message, secrets redacted). Once ``seconds``
    have passed the remaining examples are not sent.
    """
    method, _, path = label.partition(" ")
    operation = schema[path][method]
    __tracebackhide__ = True
    log = ExchangeLog()
    stop_at = time.monotonic() + seconds
    strategy = st.one_of([operation.as_strategy(generation_mode=mode, auth_storage=schema.auth)
                          for mode in modes])

    @budget.settings(max_examples=budget.examples * len(modes))
    @hypothesis.given(case=strategy)
    def property_test(case: Case) -> None:
        # Past the deadline no new example is sent, but the replay of one that failed still is:
        # otherwise hypothesis would see it pass and report a flaky test instead of the failure.
        if time.monotonic() > stop_at and not log.failed:
            log.stopped_by_clock = True
            return
        kwargs = call_kwargs(target, case)
        try:
            response = case.call(**kwargs)
        except requests.Timeout:
            curl = scrub(case.as_curl_command(), target.keys)
            pytest.fail(f"{label}: the target did not answer within {target.timeout:g} s\n"
                        f"Reproduce with:\n    {curl}", pytrace=False)
        except requests.ConnectionError as exc:
            # Refused or reset before any answer: the suite cannot judge (an Error, not a Fail).
            raise TargetUnreachable(f"{label}: cannot reach the target: {type(exc).__name__}") from None
        log.record(case, response)
        try:
            case.validate_response(response, checks=list(checks), transport_kwargs=kwargs or None)
        except FailureGroup:
            log.failed = True
            raise

    if budget.seed is not None:
        property_test = hypothesis.seed(budget.seed)(property_test)
    _run_redacted(property_test, target, log)
    return log


def run_stateful(
    schema: BaseSchema, *, target: Target, budget: Budget
) -> ExchangeLog:
    """Scenarios through the spec's links (createBatch -> getBatch), every check on every step."""
    __tracebackhide__ = True
    log = ExchangeLog()
    base = schema.as_state_machine()

    class BatchLinks(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return call_kwargs(target, case)

        def after_call(self, response: Any, case: Case) -> None:
            super().after_call(response, case)
            log.record(case, response)

    settings = hypothesis.settings(
        budget.settings(max_examples=max(2, budget.examples // 2)),
        stateful_step_count=budget.stateful_steps,
    )
    _run_redacted(lambda: BatchLinks.run(settings=settings), target, log)
    return log
