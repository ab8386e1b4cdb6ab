"""Property tests with schemathesis 4 from ``specs/<profile>.openapi.yaml``.

One run per operation generates positive and negative data, sends each case once and judges every
exchange for every requirement it can speak to (``suite.properties.judge``); the tests below then read
the findings, one requirement per test, so a deviation is charged to the one requirement whose
statement it breaks and shows the exchange that broke it:

* ``test_invalid_input_never_gets_a_server_error``: ERR-006 (MUST).
* ``test_invalid_input_is_rejected_with_4xx``: the SHOULD that invalid input gets a 4xx.
* ``test_fortytwo_error_bodies_use_the_envelope`` (ERR-001) / ``test_42ai_error_bodies_use_the_envelope``
  (ERR-002): the documented ``{"error": {"message", "type"}}`` body.
* ``test_fortytwo_422_bodies_are_validation_errors`` (ERR-005) / ``test_42ai_422_bodies_...`` (ERR-004).
* ``test_statuses_content_types_and_headers_are_declared`` (SPEC-001), ``test_2xx_bodies_match_the_spec``
  (SPEC-002), ``test_valid_requests_are_not_rejected`` (SPEC-003).
* ``test_batch_links_are_stateful``: scenarios through the spec's links (createBatch -> getBatch),
  BATCH-015.

Generation never raises, so hypothesis never replays an example or calls a run flaky. Each request's
deadline follows the work it asks for and the target's measured speed (``suite.pace``); batches a run
submitted are waited for before the next operation, so their generation does not slow the next one.

Bounds: ``CONFORM42_PROPERTY_EXAMPLES`` (examples per operation and mode, default 10),
``CONFORM42_PROPERTY_MAX_TIME`` (seconds for the whole property part, default 80),
``CONFORM42_PROPERTY_SEED`` (a fixed seed instead of derandomised generation).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from schemathesis.schemas import BaseSchema

from suite.checks import TargetUnreachable, disabled
from suite.conformance._helpers import per_test_timeout_s
from suite.http import Api
from suite.markers import requirement
from suite.openapi import load_spec, operation
from suite.pace import Pace
from suite.properties import (
    INVALID_REJECTED,
    OPERATIONS,
    Budget,
    Clock,
    ExchangeJudge,
    ExchangeLog,
    Findings,
    auth_tier,
    build_schema,
    drain_batches,
    run_operation,
    run_stateful,
)
from suite.target import Target

# Runs sharing the clock: one per operation plus the stateful one.
_RUNS = len(OPERATIONS) + 1
#: Longest wait for the batches a run submitted before the next operation starts.
_DRAIN_S = 120.0
#: The drain ends by this share of the test's own time (pytest-timeout): a run that used its slot on a
#: loaded machine then leaves its batches running rather than let the wait become a per-test timeout,
#: which would be charged to the requirement as a Fail.
_DRAIN_SHARE = 0.8


def drain_within(test_s: float, started: float) -> float:
    """Seconds the drain may take: ``_DRAIN_S``, cut to what is left of ``_DRAIN_SHARE`` of a test that
    started at ``started`` (monotonic) and may run ``test_s`` seconds (0: no per-test timeout)."""
    if test_s <= 0:
        return _DRAIN_S
    return max(0.0, min(_DRAIN_S, _DRAIN_SHARE * test_s - (time.monotonic() - started)))


@pytest.fixture(scope="module")
def budget() -> Budget:
    try:
        return Budget.from_env()
    except ValueError as exc:
        raise pytest.UsageError(f"conform42: {exc}") from None


@dataclass
class PropertyRuns:
    """The module's runs, one per operation, each done when a test first asks for it."""

    schema: BaseSchema
    target: Target
    api: Api
    budget: Budget
    pace: Pace
    judge: ExchangeJudge
    findings: Findings
    clock: Clock
    #: The per-test timeout (pytest-timeout's ``timeout`` ini, 0: none), which bounds the batch drain.
    test_s: float = 0.0
    logs: dict[str, ExchangeLog | str] = field(default_factory=dict)

    def run(self, label: str) -> ExchangeLog:
        if operation(load_spec(self.target.profile), label) is None:
            disabled(f"the {self.target.profile} spec declares no {label}")
        if label not in self.logs:
            started = time.monotonic()
            seconds = self.clock.slot()
            if seconds <= 0.5:
                self.logs[label] = (
                    f"the property time budget ({self.budget.max_time_s:g} s, CONFORM42_PROPERTY_MAX_TIME) "
                    "was used up before this operation"
                )
            else:
                log = run_operation(
                    self.schema,
                    label,
                    judge=self.judge,
                    target=self.target,
                    budget=self.budget,
                    pace=self.pace,
                    seconds=seconds,
                    liveness=self.api.liveness,
                )
                if log.batch_ids and log.unreachable is None:
                    drain_s = drain_within(self.test_s, started)
                    drain_batches(self.api, auth_tier(self.target), log.batch_ids, drain_s)
                self.logs[label] = log
            self.clock.finished_one()
        found = self.logs[label]
        if isinstance(found, str):
            pytest.skip(found)
        return found

    def verdict(self, requirement_id: str, label: str) -> None:
        """Pass, or raise the first deviation charged to ``requirement_id`` on ``label``."""
        log = self.run(label)
        failure = self.findings.failures.get((requirement_id, label))
        if failure is not None:
            raise failure
        if log.unreachable is not None:
            raise TargetUnreachable(log.unreachable)
        problem = self.findings.problems.get((requirement_id, label))
        if problem is not None:
            raise RuntimeError(f"a schemathesis check crashed: {problem}")
        if not self.findings.judged[(requirement_id, label)]:
            budget_note = ", stopped by the time budget" if log.stopped_by_clock else ""
            pytest.skip(
                f"no exchange on {label} could judge {requirement_id} "
                f"({log.calls} requests sent{budget_note})"
            )


@pytest.fixture(scope="module")
def property_runs(
    target: Target, budget: Budget, pace: Pace, api: Api, pytestconfig: pytest.Config
) -> Iterator[PropertyRuns]:
    """The profile's schema, built once the target is known (it comes from the plugin's fixture).

    Its own ``Api`` (for the task tokens and the batch drain) rather than the ``api`` fixture: the
    plugin prints the ``api`` fixture's last request as "Reproduce with:", which here would be a token
    exchange, not the failing case; each finding carries its own request.
    """
    with Api(target, liveness=api.liveness) as client:
        findings = Findings()
        yield PropertyRuns(
            schema=build_schema(target, client, budget),
            target=target,
            api=client,
            budget=budget,
            pace=pace,
            judge=ExchangeJudge(target.profile, target.keys, findings),
            findings=findings,
            clock=Clock(budget, runs=_RUNS),
            test_s=per_test_timeout_s(pytestconfig),
        )


@requirement("ERR-006")
@pytest.mark.parametrize("label", OPERATIONS)
def test_invalid_input_never_gets_a_server_error(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("ERR-006", label)


@requirement(INVALID_REJECTED)
@pytest.mark.parametrize("label", OPERATIONS)
def test_invalid_input_is_rejected_with_4xx(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict(INVALID_REJECTED, label)


@requirement("ERR-001")
@pytest.mark.parametrize("label", OPERATIONS)
def test_fortytwo_error_bodies_use_the_envelope(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("ERR-001", label)


@requirement("ERR-002")
@pytest.mark.parametrize("label", OPERATIONS)
def test_42ai_error_bodies_use_the_envelope(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("ERR-002", label)


@requirement("ERR-005")
@pytest.mark.parametrize("label", OPERATIONS)
def test_fortytwo_422_bodies_are_validation_errors(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("ERR-005", label)


@requirement("ERR-004")
@pytest.mark.parametrize("label", OPERATIONS)
def test_42ai_422_bodies_are_validation_errors(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("ERR-004", label)


@requirement("SPEC-001")
@pytest.mark.parametrize("label", OPERATIONS)
def test_statuses_content_types_and_headers_are_declared(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("SPEC-001", label)


@requirement("SPEC-002")
@pytest.mark.parametrize("label", OPERATIONS)
def test_2xx_bodies_match_the_spec(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("SPEC-002", label)


@requirement("SPEC-003")
@pytest.mark.parametrize("label", OPERATIONS)
def test_valid_requests_are_not_rejected(property_runs: PropertyRuns, label: str) -> None:
    property_runs.verdict("SPEC-003", label)


@requirement("BATCH-015")
def test_batch_links_are_stateful(property_runs: PropertyRuns) -> None:
    target = property_runs.target
    if operation(load_spec(target.profile), "POST /v1/batch") is None:
        disabled(f"the {target.profile} spec declares no POST /v1/batch")
    started = time.monotonic()
    if property_runs.clock.slot() <= 0.5:
        pytest.skip("the property time budget (CONFORM42_PROPERTY_MAX_TIME) was used up")
    log, failure = run_stateful(
        property_runs.schema, target=target, budget=property_runs.budget, pace=property_runs.pace
    )
    property_runs.clock.finished_one()
    if log.batch_ids:
        drain_s = drain_within(property_runs.test_s, started)
        drain_batches(property_runs.api, auth_tier(target), log.batch_ids, drain_s)
    if failure is not None:
        raise failure
    if not log.linked_checks:
        pytest.skip(f"the scenarios followed no link to a submitted batch ({log.calls} requests sent)")
