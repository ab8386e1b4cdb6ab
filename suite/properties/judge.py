"""Judge one property-test exchange and charge each deviation to the one requirement it breaks.

A generated exchange is looked at by several small judges, each bound to one requirement ID, and the
first deviation per requirement is kept as a ``ConformanceFailure`` (with the failing exchange, so the
report shows that response and a curl line for that request, not another). Nothing is raised during
generation: hypothesis never sees a failure, so it never replays an example and never reports a
"flaky" test; the behaviour-tagged tests in ``test_properties.py`` read the findings afterwards.

Which judge feeds which requirement, and why MUSTs use no spec-derived check:

* ERR-006 (MUST, invalid input never gets a 5xx): generated *invalid* data whose body also breaks the
  *documented* schema (the spec with every ``x-conform42-inferred`` keyword removed), answered 5xx. A
  503 with ``Retry-After`` (000: a server short of GPU memory) is no verdict on the input: not judged.
  Input invalid only by a constraint we inferred is not "invalid client input" in the documents' words.
* ``INVALID_REJECTED`` (SHOULD, invalid input is rejected with a 4xx): schemathesis's
  ``negative_data_rejection`` on the full spec, and a negative request that got no answer in time.
* ERR-001 (MUST, fortytwo: 400/401/404/429/500 bodies of POST /v1/chat/completions) / ERR-002
  (SHOULD, 42ai: every error but 422): the documented envelope ``{"error": {"message": str, "type":
  str}}``, checked by its words.
* ERR-005 (MUST, fortytwo) / ERR-004 (SHOULD, 42ai): a 422 body's ``detail`` items have loc, msg, type
  (ERR-005: detail optional, as 002 requires no member; ERR-004: a non-empty detail).
* SPEC-001: status codes, content types and headers the spec declares (schemathesis's checks).
* SPEC-002: 2xx bodies match the declared schema (schemathesis's ``response_schema_conformance``).
* SPEC-003: valid data is not rejected with 400 or 422 (the statement's words), and a valid request is
  answered within its deadline.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import jsonschema
import requests
import schemathesis
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

from suite.checks import ConformanceFailure, is_busy_503, is_validation_error
from suite.curl import scrub
from suite.openapi import load_spec, operation

__all__ = [
    "INFERRED_KEY",
    "INFERRED_REQUIRED_KEY",
    "INVALID_NO_5XX",
    "INVALID_REJECTED",
    "PROPERTY_REQUIREMENTS",
    "ExchangeJudge",
    "Findings",
    "as_httpx_request",
    "as_httpx_response",
    "documented_body_valid",
    "documented_spec",
    "schemathesis_checks",
    "schemathesis_failure",
]

#: Schema keywords the documents do not state (the specs mark them; see ARCHITECTURE.md).
INFERRED_KEY = "x-conform42-inferred"
#: Property names listed under ``required`` that the documents do not make required.
INFERRED_REQUIRED_KEY = "x-conform42-inferred-required"

INVALID_NO_5XX = "ERR-006"
INVALID_REJECTED = "ERR-013"
ENVELOPE = {"42ai": "ERR-002", "fortytwo": "ERR-001"}
#: The statuses 002 declares with the envelope (ERR-001); the 42ai rule (ERR-002) covers every error.
_FORTYTWO_ENVELOPE_STATUSES = frozenset({400, 401, 404, 429, 500})
#: ... for the one operation it documents (GET /v1/models is only named by 001).
_FORTYTWO_ENVELOPE_OPERATION = "POST /v1/chat/completions"
VALIDATION_BODY = {"42ai": "ERR-004", "fortytwo": "ERR-005"}
SPEC_STATUS, SPEC_BODY, SPEC_ACCEPTS = "SPEC-001", "SPEC-002", "SPEC-003"

#: Every requirement a property run can judge, per profile.
PROPERTY_REQUIREMENTS: Mapping[str, tuple[str, ...]] = {
    profile: (
        INVALID_NO_5XX,
        INVALID_REJECTED,
        ENVELOPE[profile],
        VALIDATION_BODY[profile],
        SPEC_STATUS,
        SPEC_BODY,
        SPEC_ACCEPTS,
    )
    for profile in ("42ai", "fortytwo")
}

#: schemathesis's single-exchange checks of SPEC-001 (statuses, content types, headers, auth declared).
_SPEC_STATUS_CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
)


# ------------------------------------------------------------------------------ documented schema
def _strip_inferred(node: Any) -> Any:
    if isinstance(node, list):
        return [_strip_inferred(item) for item in node]
    if not isinstance(node, dict):
        return node
    inferred = node.get(INFERRED_KEY) or ()
    not_required = set(node.get(INFERRED_REQUIRED_KEY) or ())
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in (INFERRED_KEY, INFERRED_REQUIRED_KEY):
            continue
        if key == "required" and isinstance(value, list) and "required" in inferred:
            kept = [name for name in value if name not in not_required] if not_required else []
            if kept:
                out[key] = kept
            continue
        if key in inferred and key != "required":
            continue
        out[key] = _strip_inferred(value)
    return out


@cache
def _documented(profile: str) -> dict[str, Any]:
    stripped: dict[str, Any] = _strip_inferred(copy.deepcopy(load_spec(profile)))
    return stripped


def documented_spec(profile: str) -> dict[str, Any]:
    """The profile's spec with every constraint the documents do not state removed."""
    return copy.deepcopy(_documented(profile))


def documented_body_valid(profile: str, label: str, body: Any) -> bool | None:
    """Whether ``body`` is valid for ``label`` under the documented schema; None when there is none."""
    op = operation(_documented(profile), label)
    content = (op or {}).get("requestBody", {}).get("content", {})
    media = content.get("application/json") if isinstance(content, dict) else None
    if not isinstance(media, dict) or "schema" not in media:
        return None
    registry: Registry[Any] = Registry().with_resource(
        "urn:conform42:spec", Resource.from_contents(_documented(profile), default_specification=DRAFT202012)
    )
    method, _, path = label.partition(" ")
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ("paths", path, method.lower(), "requestBody", "content", "application/json", "schema")
    )
    validator = jsonschema.Draft202012Validator({"$ref": f"urn:conform42:spec#/{pointer}"}, registry=registry)
    return bool(validator.is_valid(body))


# --------------------------------------------------------------------------------------- exchange
def as_httpx_request(request: requests.PreparedRequest) -> httpx.Request:
    body = request.body
    content = body.encode("utf-8") if isinstance(body, str) else body if isinstance(body, bytes) else None
    headers = {
        name: value if isinstance(value, str) else value.decode("latin-1")
        for name, value in request.headers.items()
    }
    return httpx.Request(str(request.method), str(request.url), headers=headers, content=content)


def as_httpx_response(response: schemathesis.Response) -> httpx.Response:
    headers = [(name, value) for name, values in response.headers.items() for value in values]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=response.content,
        request=as_httpx_request(response.request),
    )


@dataclass
class Findings:
    """What the property runs of one session saw, per requirement and operation."""

    #: (requirement, operation) -> exchanges that requirement judged.
    judged: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (requirement, operation) -> the first deviation seen.
    failures: dict[tuple[str, str], ConformanceFailure] = field(default_factory=dict)
    #: (requirement, operation) -> a problem of the suite (a check that crashed): an Error.
    problems: dict[tuple[str, str], str] = field(default_factory=dict)

    def judged_one(self, requirement: str, label: str) -> None:
        self.judged[(requirement, label)] += 1

    def failed(self, requirement: str, label: str, failure: ConformanceFailure) -> None:
        self.judged[(requirement, label)] += 1
        self.failures.setdefault((requirement, label), failure)


def schemathesis_checks(names: tuple[str, ...]) -> list[Callable[..., Any]]:
    load_all_checks()
    return list(CHECKS.get_by_names(list(names)))


def schemathesis_failure(
    exc: FailureGroup, label: str, response: schemathesis.Response, keys: Mapping[str, str]
) -> ConformanceFailure:
    failures = list(exc.exceptions)
    titles = ", ".join(sorted({f"{getattr(f, 'title', type(f).__name__)}" for f in failures}))
    details = "; ".join(str(getattr(f, "message", f)).strip().replace("\n", "; ") for f in failures)
    return ConformanceFailure(
        scrub(f"{label}: schemathesis: {titles}", keys),
        expected=scrub(details, keys) or "a response the spec allows",
        received=f"HTTP {response.status_code}",
        response=as_httpx_response(response),
    )


def _json_body(response: schemathesis.Response) -> Any:
    """The decoded body, or None when it is not JSON."""
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


class ExchangeJudge:
    """Applies every judge of the module docstring to one exchange of a property run."""

    def __init__(self, profile: str, keys: Mapping[str, str], findings: Findings) -> None:
        self.profile = profile
        self.keys = keys
        self.findings = findings
        self._status_checks = schemathesis_checks(_SPEC_STATUS_CHECKS)
        self._body_check = schemathesis_checks(("response_schema_conformance",))
        self._reject_check = schemathesis_checks(("negative_data_rejection",))

    # -- one exchange ------------------------------------------------------------------------------
    def judge(
        self,
        label: str,
        case: Any,
        response: schemathesis.Response,
        *,
        positive: bool,
        transport_kwargs: dict[str, Any] | None,
    ) -> None:
        status = response.status_code
        if not positive:
            self._invalid_input(label, case, response)
            self._schemathesis(INVALID_REJECTED, label, case, response, self._reject_check, transport_kwargs)
        else:
            self._accepted(label, response)
        if status >= 400 and status != 422:
            self._envelope(label, response)
        if status == 422:
            self._validation_body(label, response)
        self._schemathesis(SPEC_STATUS, label, case, response, self._status_checks, transport_kwargs)
        if 200 <= status < 300:
            self._schemathesis(SPEC_BODY, label, case, response, self._body_check, transport_kwargs)

    def unanswered(self, label: str, request: httpx.Request, *, positive: bool, waited_s: float) -> None:
        """No answer within the request's deadline: a valid request not served, or invalid input not
        rejected. Neither is a 5xx, so no MUST of this module is charged (the behaviour tests judge hangs
        against their own MUSTs)."""
        requirement = SPEC_ACCEPTS if positive else INVALID_REJECTED
        self.findings.failed(
            requirement,
            label,
            ConformanceFailure(
                f"{label}: no answer within {waited_s:.1f} s",
                expected=f"an answer within the request's deadline ({waited_s:.1f} s, derived from the work "
                "asked for and the target's measured speed)",
                received=f"nothing after {waited_s:.1f} s",
                request=request,
            ),
        )

    # -- judges --------------------------------------------------------------------------------------
    def _invalid_input(self, label: str, case: Any, response: schemathesis.Response) -> None:
        body = getattr(case, "body", None)
        if isinstance(body, dict | list) and documented_body_valid(self.profile, label, body) is True:
            return  # invalid only by a constraint we inferred: not "invalid client input" per the documents
        if is_busy_503(response.status_code, response.headers.keys()):
            return  # a busy server's 503 + Retry-After (000) is no verdict on the input
        if response.status_code < 500:
            self.findings.judged_one(INVALID_NO_5XX, label)
            return
        self.findings.failed(
            INVALID_NO_5XX,
            label,
            ConformanceFailure(
                f"{label}: invalid input was answered with a server error",
                expected="a status below 500 (invalid client input is the client's error)",
                received=f"HTTP {response.status_code}",
                response=as_httpx_response(response),
            ),
        )

    def _accepted(self, label: str, response: schemathesis.Response) -> None:
        # SPEC-003's own words: "not rejected with 400 or 422" (a 401/404 to generated valid data may be
        # right: an unknown model ID is valid JSON and a documented 404).
        if response.status_code not in (400, 422):
            self.findings.judged_one(SPEC_ACCEPTS, label)
            return
        self.findings.failed(
            SPEC_ACCEPTS,
            label,
            ConformanceFailure(
                f"{label}: a request the spec allows was rejected",
                expected="no 400 or 422 for data valid under the profile's OpenAPI document",
                received=f"HTTP {response.status_code}",
                response=as_httpx_response(response),
            ),
        )

    def _envelope(self, label: str, response: schemathesis.Response) -> None:
        status = response.status_code
        if self.profile == "fortytwo" and (
            status not in _FORTYTWO_ENVELOPE_STATUSES or label != _FORTYTWO_ENVELOPE_OPERATION
        ):
            return  # ERR-001 names these statuses of 002's one operation; the rest is SPEC-001's
        requirement = ENVELOPE[self.profile]
        body = _json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        if (
            isinstance(error, dict)
            and isinstance(error.get("message"), str)
            and isinstance(error.get("type"), str)
        ):
            self.findings.judged_one(requirement, label)
            return
        self._wrong_body(
            requirement,
            label,
            response,
            f"HTTP {status} body is not in the documented error envelope",
            '{"error": {"message": <string>, "type": <string>}}',
        )

    def _validation_body(self, label: str, response: schemathesis.Response) -> None:
        requirement = VALIDATION_BODY[self.profile]
        # ERR-005 (MUST) by 002's words: detail is optional, its items need loc, msg and type. ERR-004
        # (the 42ai SHOULD) asks for a non-empty detail, which says what was wrong.
        if is_validation_error(_json_body(response), detail_required=requirement == VALIDATION_BODY["42ai"]):
            self.findings.judged_one(requirement, label)
            return
        self._wrong_body(
            requirement,
            label,
            response,
            "HTTP 422 body is not an HTTPValidationError",
            '{"detail": [{"loc": [...], "msg": <string>, "type": <string>}, ...]}',
        )

    def _wrong_body(
        self, requirement: str, label: str, response: schemathesis.Response, what: str, expected: str
    ) -> None:
        self.findings.failed(
            requirement,
            label,
            ConformanceFailure(
                f"{label}: {what}",
                expected=expected,
                received=scrub(response.content[:200].decode("utf-8", "replace"), self.keys),
                response=as_httpx_response(response),
            ),
        )

    def _schemathesis(
        self,
        requirement: str,
        label: str,
        case: Any,
        response: schemathesis.Response,
        checks: list[Callable[..., Any]],
        transport_kwargs: dict[str, Any] | None,
    ) -> None:
        try:
            case.validate_response(response, checks=checks, transport_kwargs=transport_kwargs)
        except FailureGroup as exc:
            self.findings.failed(requirement, label, schemathesis_failure(exc, label, response, self.keys))
        except requests.RequestException as exc:
            # A check that sends its own request (ignored_auth, unsupported_method) and got no answer.
            self.findings.failed(
                requirement,
                label,
                ConformanceFailure(
                    f"{label}: a follow-up request of schemathesis's checks got no answer",
                    expected="an answer",
                    received=f"{type(exc).__name__}",
                    response=as_httpx_response(response),
                ),
            )
        except Exception as exc:  # a check crashing is the suite's problem: an Error, not a Fail
            self.findings.problems.setdefault((requirement, label), f"{type(exc).__name__}: {exc}")
        else:
            self.findings.judged_one(requirement, label)
