"""Property tests of the OpenAPI specs with schemathesis 4, for ``suite/conformance/test_properties.py``.

* ``budget``: how much generation a run may do (examples, wall clock, seed).
* ``data``: the hooks that keep generated data cheap and valid data valid.
* ``schema``: the schemathesis schema of a target's profile (servers, auth, bounds).
* ``runs``: one run per operation and the stateful run through the spec's links.
* ``judge``: judges each exchange and charges a deviation to the one requirement it breaks.
"""

from __future__ import annotations

from suite.properties.budget import Budget, Clock
from suite.properties.judge import INVALID_REJECTED, ExchangeJudge, Findings
from suite.properties.runs import ExchangeLog, drain_batches, request_deadline, run_operation, run_stateful
from suite.properties.schema import OPERATIONS, auth_tier, build_schema, call_kwargs, prepared_spec

__all__ = [
    "INVALID_REJECTED",
    "OPERATIONS",
    "Budget",
    "Clock",
    "ExchangeJudge",
    "ExchangeLog",
    "Findings",
    "auth_tier",
    "build_schema",
    "call_kwargs",
    "drain_batches",
    "prepared_spec",
    "request_deadline",
    "run_operation",
    "run_stateful",
]
