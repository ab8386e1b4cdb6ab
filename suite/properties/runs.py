"""The property runs: one per operation (positive and negative data) and the stateful one (BATCH-015).

Each generated case is sent once and judged (``suite.properties.judge``); hypothesis only generates, so
it never replays an example or calls a run flaky. Batches a run submitted can be drained before the
next run, so their background generation does not slow it down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import BaseSchema

from suite.checks import ConformanceFailure
from suite.http import Api
from suite.liveness import Liveness, TargetStopped, endpoint
from suite.pace import Pace
from suite.properties.budget import Budget
from suite.properties.data import MAX_TOKENS_CAP, Case, is_positive
from suite.properties.judge import ExchangeJudge, as_httpx_response, schemathesis_checks, schemathesis_failure
from suite.properties.schema import call_kwargs
from suite.target import Target

__all__ = ["ExchangeLog", "drain_batches", "request_deadline", "run_operation", "run_stateful"]


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
        self.statuses["positive" if is_positive(case) else "negative"].append(response.status_code)
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
    return httpx.Request(
        str(data.get("method", case.method)),
        str(data.get("url")),
        headers=headers,
        content=content if isinstance(content, bytes | str) else None,
    )


def run_operation(
    schema: BaseSchema,
    label: str,
    *,
    judge: ExchangeJudge,
    target: Target,
    budget: Budget,
    pace: Pace,
    seconds: float,
    liveness: Liveness | None = None,
) -> ExchangeLog:
    """Generate positive and negative cases of ``label``, send each and judge it (``judge``).

    Nothing is raised for a deviation (see ``suite.properties.judge``): hypothesis only generates. Once
    ``seconds`` have passed no new example is sent; a target that cannot be reached stops the run, and
    so does an endpoint that stopped answering (``liveness``, shared with the behaviour tests).
    """
    method, _, path = label.partition(" ")
    operation = schema[path][method]
    log = ExchangeLog()
    stop_at = time.monotonic() + seconds
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategy = st.one_of(
        [operation.as_strategy(generation_mode=mode, auth_storage=schema.auth) for mode in modes]
    )

    @budget.settings(max_examples=budget.examples * len(modes))
    @hypothesis.given(case=strategy)
    def property_test(case: Case) -> None:
        if log.unreachable is not None:
            return
        if time.monotonic() > stop_at:
            log.stopped_by_clock = True
            return
        key = endpoint(case.method, case.formatted_path)
        if liveness is not None:
            try:
                liveness.check(key)
            except TargetStopped as exc:
                log.unreachable = str(exc)
                return
        kwargs = call_kwargs(target, case)
        deadline = request_deadline(case, pace)
        positive = is_positive(case)
        started = time.monotonic()
        try:
            response = case.call(timeout=deadline, **kwargs)
        except requests.Timeout:
            if liveness is not None:
                liveness.struck(key, f"no answer within {deadline:g} s")
            judge.unanswered(
                label,
                _request_of(case, kwargs, target),
                positive=positive,
                waited_s=time.monotonic() - started,
            )
            return
        except requests.ConnectionError as exc:
            # Refused or reset before any answer: the suite cannot judge (an Error, not a Fail).
            log.unreachable = f"{label}: cannot reach the target: {type(exc).__name__}"
            return
        if liveness is not None:
            liveness.answered(key)
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
                found.append(
                    ConformanceFailure(
                        f"{label}: no answer within {kwargs['timeout']:.1f} s",
                        expected="an answer within the request's deadline",
                        received="no answer",
                        request=_request_of(case, kwargs, target),
                    )
                )
                raise _ScenarioStopped from None

        def after_call(self, response: Any, case: Case) -> None:
            super().after_call(response, case)
            log.record(case, response)

        def validate_response(self, response: Any, case: Case, *args: Any, **kwargs: Any) -> None:
            if found or case.operation.path != "/v1/batch/{batch_id}" or not is_positive(case):
                return  # BATCH-015 is about valid requests that follow the link
            linked = (case.path_parameters or {}).get("batch_id")
            if linked not in log.batch_ids:
                return  # a generated ID, not one a submission's link handed over
            log.linked_checks += 1
            label = f"GET {case.operation.path}"
            if response.status_code != 200:
                found.append(
                    ConformanceFailure(
                        f"{label}: the batch the submission's link points to was not answered 200",
                        expected="HTTP 200 with a BatchStatus body",
                        received=f"HTTP {response.status_code}",
                        response=as_httpx_response(response),
                    )
                )
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
