"""Property tests with schemathesis 4 from ``specs/<profile>.openapi.yaml`` (issue 6).

Each test runs one group of schemathesis checks on one operation, so a failure names the requirement
it breaks and nothing else:

* ``test_invalid_input_is_rejected_with_4xx``: negative data (schema-violating bodies, missing
  credentials...) gets a 4xx and never a 5xx (ERR-006).
* ``test_error_responses_use_the_envelope``: every error response other than 422 has the documented
  ``{"error": {"message", "type"}}`` body (ERR-001 for fortytwo, ERR-002 for 42ai).
* ``test_operation_conforms_to_the_spec``: every single-exchange check of schemathesis on positive and
  negative data (documented status codes, content types, headers and response schemas, valid data
  accepted, auth not ignored): SPEC-001 (statuses, content types, headers), SPEC-002 (response
  schemas), SPEC-003 (valid requests accepted).
* ``test_batch_links_are_stateful``: scenarios through the spec's links (createBatch -> getBatch),
  BATCH-015.

Bounds: ``CONFORM42_PROPERTY_EXAMPLES`` (examples per operation and mode, default 10),
``CONFORM42_PROPERTY_MAX_TIME`` (seconds for the whole property part, default 80),
``CONFORM42_PROPERTY_SEED`` (a fixed seed instead of derandomised generation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema

from suite.checks import disabled
from suite.http import Api
from suite.markers import requirement
from suite.openapi import load_spec, operation
from suite.properties import (
    ALL_CHECKS,
    NEGATIVE_CHECKS,
    OPERATIONS,
    Budget,
    Clock,
    ExchangeLog,
    build_schema,
    check_functions,
    envelope_check,
    run_operation,
    run_stateful,
)
from suite.target import Target

BOTH_MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Runs of this module sharing the clock: three tests per operation plus the stateful one.
_RUNS = 3 * len(OPERATIONS) + 1


@pytest.fixture(scope="module")
def budget() -> Budget:
    try:
        return Budget.from_env()
    except ValueError as exc:
        raise pytest.UsageError(f"conform42: {exc}") from None


@pytest.fixture(scope="module")
def clock(budget: Budget) -> Clock:
    return Clock(budget, runs=_RUNS)


@pytest.fixture(scope="module")
def property_schema(target: Target, budget: Budget) -> Iterator[BaseSchema]:
    """The profile's schema, built once the target is known (it comes from the plugin's fixture).

    Its own ``Api`` (for the task tokens) rather than the ``api`` fixture: the plugin prints the ``api``
    fixture's last request as "Reproduce with:", which here would be a token exchange, not the failing
    case; schemathesis's message carries the right curl line.
    """
    with Api(target) as client:
        yield build_schema(target, client, budget)


@pytest.fixture
def slot(clock: Clock) -> Iterator[float]:
    seconds = clock.slot()
    if seconds <= 0.5:
        pytest.skip(
            f"the property time budget ({clock.budget.max_time_s:g} s, "
            "CONFORM42_PROPERTY_MAX_TIME) is used up"
        )
    yield seconds
    clock.finished_one()


def _declared(target: Target, label: str) -> None:
    if operation(load_spec(target.profile), label) is None:
        disabled(f"the {target.profile} spec declares no {label}")


def _run(
    property_schema: BaseSchema,
    target: Target,
    label: str,
    *,
    modes: tuple[GenerationMode, ...],
    checks: list[Callable[..., Any]],
    budget: Budget,
    slot: float,
) -> ExchangeLog:
    _declared(target, label)
    return run_operation(
        property_schema, label, modes=modes, checks=checks, target=target, budget=budget, seconds=slot
    )


@requirement("ERR-006")
@pytest.mark.parametrize("label", OPERATIONS)
def test_invalid_input_is_rejected_with_4xx(
    property_schema: BaseSchema, target: Target, budget: Budget, slot: float, label: str
) -> None:
    log = _run(
        property_schema,
        target,
        label,
        modes=(GenerationMode.NEGATIVE,),
        checks=check_functions(NEGATIVE_CHECKS),
        budget=budget,
        slot=slot,
    )
    if not log.statuses["negative"]:
        # GET /v1/models has no input to get wrong beyond its credentials; nothing was proven.
        pytest.skip(f"no invalid input could be generated for {label}")


@requirement("ERR-001", "ERR-002")
@pytest.mark.parametrize("label", OPERATIONS)
def test_error_responses_use_the_envelope(
    property_schema: BaseSchema, target: Target, budget: Budget, slot: float, label: str
) -> None:
    log = _run(
        property_schema, target, label, modes=BOTH_MODES, checks=[envelope_check()], budget=budget, slot=slot
    )
    errors = [s for statuses in log.statuses.values() for s in statuses if s >= 400 and s != 422]
    if not errors:
        pytest.skip(f"no error response other than 422 was provoked on {label}")


@requirement("SPEC-001", "SPEC-002", "SPEC-003")
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_spec(
    property_schema: BaseSchema, target: Target, budget: Budget, slot: float, label: str
) -> None:
    _run(
        property_schema,
        target,
        label,
        modes=BOTH_MODES,
        checks=check_functions(ALL_CHECKS),
        budget=budget,
        slot=slot,
    )


@requirement("BATCH-015", "SPEC-001", "SPEC-002")
def test_batch_links_are_stateful(
    property_schema: BaseSchema, target: Target, budget: Budget, slot: float
) -> None:
    _declared(target, "POST /v1/batch")
    log = run_stateful(property_schema, target=target, budget=budget)
    assert log.calls > 0, "the state machine sent no request"
