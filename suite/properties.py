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
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import Case as _Case
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import BaseSchema

from suite.checks import ConformanceFailure, disabled
from suite.http import TOKEN_PATH, Api
from suite.openapi import load_spec
from suite.pace import Pace
from suite.property_judge import ExchangeJudge, as_httpx_response, schemathesis_checks, schemathesis_failure
from suite.samples import PIPELINE_TEMPLATE, PNG_DATA_URL
from suite.target import Target

# schemathesis's Case is generic over its operation types; the suite never looks inside those.
Case = _Case[Any]

__all__ = [
    "OPERATIONS",
    "Budget",
    "Clock",
    "ExchangeLog",
    "auth_tier",
    "build_schema",
    "call_kwargs",
    "drain_batches",
    "prepared_spec",
    "request_deadline",
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


# --------------------------------------------------------------------------------------------- runs


@dataclass
class ExchangeLog:
    """What one run sent and saw (the deviations go to the shared ``Findings``)."""

    statuses: dict[str, list[int]] = field(default_factory=lambda: {"positive": [], "negative": []})
    stopped_by_clock: bool = False
    #: Set when the target could not be reached: the run stops sending and the tests end in Error.
    unreachable: str | None = None
    #: Batches the run submitted (2xx answers to POST /v1/batch): background work to wait for.
    batch_ids: list[str] = field(default_factory=list)
    #: Stateful runs: GET /v1/batch/{batch_id} steps that followed a submission's link.
    linked_checks: int = 0

    def record(self, case: Case, response: schemathesis.Response) -> None:
        self.statuses["positive" if _is_positive(case) else "negative"].append(response.status_code)
        if case.operation.path == "/v1/batch" and 200 <= response.status_code < 300:
            try:
                body = response.json()
            except ValueError:
                return
            batch_id = body.get("batch_id") if isinstance(body, dict) else None
            if isinstance(batch_id, str) and batch_id:
                self.batch_ids.append(batch_id)

    @property
    def calls(self) -> int:
        return sum(len(v) for v in self.statuses.values())


def request_deadline(case: Case, pace: Pace) -> float:
    """Seconds one generated request may take: its generation, the pipeline's steps, or the floor."""
    return pace.request_deadline(case.operation.path, case.body, default_tokens=MAX_TOKENS_CAP)


def _request_of(case: Case, kwargs: dict[str, Any], target: Target) -> httpx.Request:
    """The request a case sends, for a failure that has no response (secrets are redacted later)."""
    try:
        data = case.as_transport_kwargs(base_url=kwargs.get("base_url") or target.base_url)
    except Exception:
        return httpx.Request(case.method, target.base_url + case.formatted_path)
    content = data.get("data")
    if "json" in data and data["json"] is not None:
        content = json.dumps(data["json"]).encode()
    headers = {str(k): str(v) for k, v in (data.get("headers") or {}).items()}
    if "json" in data and data["json"] is not None:
        headers.setdefault("Content-Type", "application/json")
    return httpx.Request(str(data.get("method", case.method)), str(data.get("url")), headers=headers,
                         content=content if isinstance(content, bytes | str) else None)


def run_operation(
    schema: BaseSchema,
    label: str,
    *,
    judge: ExchangeJudge,
    target: Target,
    budget: Budget,
    pace: Pace,
    seconds: float,
) -> ExchangeLog:
    """Generate positive and negative cases of ``label``, send each and judge it (``judge``).

    Nothing is raised for a deviation (see ``suite.property_judge``): hypothesis only generates. Once
    ``seconds`` have passed no new example is sent; a target that cannot be reached stops the run.
    """
    method, _, path = label.partition(" ")
    operation = schema[path][method]
    log = ExchangeLog()
    stop_at = time.monotonic() + seconds
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategy = st.one_of([operation.as_strategy(generation_mode=mode, auth_storage=schema.auth)
                          for mode in modes])

    @budget.settings(max_examples=budget.examples * len(modes))
    @hypothesis.given(case=strategy)
    def property_test(case: Case) -> None:
        if log.unreachable is not None:
            return
        if time.monotonic() > stop_at:
            log.stopped_by_clock = True
            return
        kwargs = call_kwargs(target, case)
        deadline = request_deadline(case, pace)
        positive = _is_positive(case)
        started = time.monotonic()
        try:
            response = case.call(timeout=deadline, **kwargs)
        except requests.Timeout:
            judge.unanswered(label, _request_of(case, kwargs, target), positive=positive,
                             waited_s=time.monotonic() - started)
            return
        except requests.ConnectionError as exc:
            # Refused or reset before any answer: the suite cannot judge (an Error, not a Fail).
            log.unreachable = f"{label}: cannot reach the target: {type(exc).__name__}"
            return
        log.record(case, response)
        judge.judge(label, case, response, positive=positive, transport_kwargs=kwargs or None)

    if budget.seed is not None:
        property_test = hypothesis.seed(budget.seed)(property_test)
    property_test()
    return log


def drain_batches(api: Api, tier: str, batch_ids: Sequence[str], deadline_s: float) -> list[str]:
    """Wait (bounded) until the batches a run submitted are no longer pending or running, so their
    generation does not compete with the requests that come next; the IDs still unfinished."""
    waiting = list(dict.fromkeys(batch_ids))
    end = time.monotonic() + deadline_s
    while waiting and time.monotonic() < end:
        still: list[str] = []
        for batch_id in waiting:
            try:
                response = api.get(f"/v1/batch/{batch_id}", tier=tier)
                body = response.json() if response.status_code == 200 else None
            except Exception:
                body = None
            if isinstance(body, dict) and body.get("status") in ("pending", "running", "processing"):
                still.append(batch_id)
        waiting = still
        if waiting:
            time.sleep(0.5)
    return waiting


def run_stateful(
    schema: BaseSchema, *, target: Target, budget: Budget, pace: Pace
) -> tuple[ExchangeLog, ConformanceFailure | None]:
    """Scenarios through the spec's links (createBatch -> getBatch) for BATCH-015.

    Only BATCH-015's statement is checked, on the steps it is about: a GET /v1/batch/{batch_id} reached
    through the link answers 200 with a body that matches BatchStatus. The first deviation (or a request
    with no answer in time) is returned, not raised, with the exchange it is about.
    """
    log = ExchangeLog()
    found: list[ConformanceFailure] = []
    base = schema.as_state_machine()
    body_checks = schemathesis_checks(("response_schema_conformance",))

    class BatchLinks(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {**call_kwargs(target, case), "timeout": request_deadline(case, pace)}

        def call(self, case: Case, **kwargs: Any) -> Any:
            try:
                return case.call(**kwargs)
            except requests.Timeout:
                label = f"{case.method.upper()} {case.operation.path}"
                found.append(ConformanceFailure(
                    f"{label}: no answer within {kwargs['timeout']:.1f} s",
                    expected="an answer within the request's deadline", received="no answer",
                    request=_request_of(case, kwargs, target)))
                raise _ScenarioStopped from None

        def after_call(self, response: Any, case: Case) -> None:
            super().after_call(response, case)
            log.record(case, response)

        def validate_response(self, response: Any, case: Case, *args: Any, **kwargs: Any) -> None:
            if found or case.operation.path != "/v1/batch/{batch_id}" or not _is_positive(case):
                return  # BATCH-015 is about valid requests that follow the link
            linked = (case.path_parameters or {}).get("batch_id")
            if linked not in log.batch_ids:
                return  # a generated ID, not one a submission's link handed over
            log.linked_checks += 1
            label = f"GET {case.operation.path}"
            if response.status_code != 200:
                found.append(ConformanceFailure(
                    f"{label}: the batch the submission's link points to was not answered 200",
                    expected="HTTP 200 with a BatchStatus body", received=f"HTTP {response.status_code}",
                    response=as_httpx_response(response)))
                return
            try:
                case.validate_response(response, checks=body_checks)
            except FailureGroup as exc:
                found.append(schemathesis_failure(exc, label, response, target.keys))

    settings = hypothesis.settings(
        budget.settings(max_examples=max(2, budget.examples // 2)),
        stateful_step_count=budget.stateful_steps,
    )
    try:
        BatchLinks.run(settings=settings)
    except Exception:
        # A stopped scenario (or hypothesis reporting its replay as flaky) after a recorded deviation:
        # the deviation is the result. Anything else is the suite's problem and stays an Error.
        if not found:
            raise
    return log, (found[0] if found else None)


class _ScenarioStopped(Exception):
    """Ends a stateful scenario after a request got no answer (the finding is already recorded)."""
