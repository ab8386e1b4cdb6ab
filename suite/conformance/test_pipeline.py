"""Pipeline: the design-analysis template (scan with 42-vision, then plan with 42-think), its output,
reference resolution (another image, another result), unknown templates and the free tier's refusal.
The image is the target's ``image_url`` (``--image-url``; by default a tiny PNG as a data: URL, since 000's
own example is an https URL that only a target fetching images can take). Reference resolution needs a
second, different image: a built-in data: URL, and that test Skips when the target does not take it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from suite.checks import expect, expect_envelope, expect_status
from suite.conformance._helpers import PIPELINE, Memo, expect_feature, first_tier, json_object
from suite.features import skip_unless_image_taken
from suite.http import Api
from suite.markers import requirement
from suite.samples import BLUE_PNG_DATA_URL, PNG_DATA_URL
from suite.target import Target

TEMPLATE = "design-analysis"
#: The steps of design-analysis as 000's example response lists them.
STEPS = [("scan", "42-vision"), ("plan", "42-think")]


def _request(image_url: str, template: str = TEMPLATE) -> dict[str, Any]:
    return {"template": template, "input": {"image_url": image_url}}


def _post(api: Api, target: Target, image_url: str) -> httpx.Response:
    """One design-analysis request with the strongest key (pro is what 000's tiers need), given the
    deadline the measured speed gives two sequential generations (``Pace.pipeline_deadline``), never
    less than the request timeout."""
    tier = first_tier(target, ("pro", "internal"))
    measured = api.pace.pipeline_deadline() if api.pace is not None else target.timeout
    timeout = max(target.timeout, measured)
    return api.post(PIPELINE, _request(image_url), tier=tier, timeout=timeout)


def _run(api: Api, target: Target, image_url: str) -> tuple[httpx.Response, dict[str, Any]]:
    """One design-analysis run, checked 2xx + JSON (000 shows the body and names no status code). A
    refusal of the suite's own data: URL image is a Skip with the reason (``skip_unless_image_taken``)."""
    response = _post(api, target, image_url)
    expect_feature(target, response, "pipelines (POST /v1/pipeline)")
    skip_unless_image_taken(target, image_url, response, f"the {TEMPLATE} pipeline")
    expect(
        response.is_success,
        f"the {TEMPLATE} pipeline did not run",
        expected="a 2xx status (200 expected; 000 names none)",
        received=f"HTTP {response.status_code}",
        response=response,
    )
    return response, json_object(response, "the pipeline response")


def pipeline_run(api: Api, memo: Memo, target: Target) -> tuple[httpx.Response, dict[str, Any]]:
    """The session's one design-analysis run of the target's image."""
    return memo("pipeline", lambda: _run(api, target, target.image_url))


def _steps(response: httpx.Response, body: dict[str, Any]) -> list[dict[str, Any]]:
    results = body.get("results")
    expect(
        isinstance(results, list) and all(isinstance(s, dict) for s in results),
        "the pipeline response has no results list",
        expected="results: an array of step objects",
        received=json.dumps(results)[:200],
        response=response,
    )
    assert isinstance(results, list)
    return results


@requirement("PIPE-001")
def test_design_analysis_completes(api: Api, memo: Memo, target: Target) -> None:
    response, body = pipeline_run(api, memo, target)
    expect(
        body.get("status") == "completed",
        "the pipeline did not complete",
        expected='status "completed"',
        received=f"status {body.get('status')!r}",
        response=response,
    )


@requirement("PIPE-002")
def test_steps_are_scan_then_plan(api: Api, memo: Memo, target: Target) -> None:
    response, body = pipeline_run(api, memo, target)
    got = [(s.get("id"), s.get("model")) for s in _steps(response, body)]
    expect(
        got == STEPS,
        "the design-analysis steps are not scan (42-vision) then plan (42-think)",
        expected=f"{STEPS}",
        received=f"{got}",
        response=response,
    )


@requirement("PIPE-003")
def test_completed_steps_have_documented_members(api: Api, memo: Memo, target: Target) -> None:
    response, body = pipeline_run(api, memo, target)
    for step in _steps(response, body):
        ok = (
            isinstance(step.get("id"), str)
            and isinstance(step.get("model"), str)
            and step.get("status") == "completed"
            and isinstance(step.get("content"), str)
        )
        expect(
            ok,
            "a pipeline step lacks its documented members",
            expected='{"id": <string>, "model": <string>, "status": "completed", "content": <string>}',
            received=json.dumps(step)[:200],
            response=response,
        )


@requirement("PIPE-004")
def test_final_output_is_a_string(api: Api, memo: Memo, target: Target) -> None:
    """000 shows a string ("..."); whether it has words is the models' business, not checked."""
    response, body = pipeline_run(api, memo, target)
    final = body.get("final_output")
    expect(
        isinstance(final, str),
        "the pipeline has no final_output",
        expected="final_output: a string",
        received=f"final_output: {final!r}",
        response=response,
    )


@requirement("PIPE-005")
def test_final_output_is_last_step_content(api: Api, memo: Memo, target: Target) -> None:
    response, body = pipeline_run(api, memo, target)
    steps = _steps(response, body)
    last = steps[-1].get("content") if steps else None
    expect(
        steps and body.get("final_output") == last,
        "final_output is not the last step's content",
        expected="final_output == results[-1].content",
        received=f"final_output {str(body.get('final_output'))[:80]!r}, last content {str(last)[:80]!r}",
        response=response,
    )


def _contents(response: httpx.Response, body: dict[str, Any]) -> tuple[str | None, Any]:
    """The scan step's content (None when there is no step "scan") and the final_output."""
    scan = next((s for s in _steps(response, body) if s.get("id") == "scan"), None)
    content = scan.get("content") if scan is not None else None
    return (content if isinstance(content, str) else None), body.get("final_output")


@requirement("PIPE-008")
def test_plan_depends_on_the_scan(api: Api, memo: Memo, target: Target) -> None:
    """Reference resolution judged by its effect: the same image twice must give one final_output (else
    the target is not deterministic and nothing can be concluded), then another image (a blue PNG, or the
    red one when the target's image is the blue one) must change the scan and, through {{scan.content}},
    the plan and the final_output. The other image is a data: URL; a target that does not take it is
    skipped, not failed (--image-url can only name one image)."""
    first_response, first = pipeline_run(api, memo, target)
    first_scan, first_final = _contents(first_response, first)
    if not isinstance(first_final, str):
        pytest.skip("no final_output to compare (judged by PIPE-004)")
    _again_response, again = _run(api, target, target.image_url)
    if again.get("final_output") != first_final:
        pytest.skip(
            "cannot judge reference resolution on a non-deterministic target "
            "(the same image gave two different final_outputs)"
        )
    other_url = PNG_DATA_URL if target.image_url == BLUE_PNG_DATA_URL else BLUE_PNG_DATA_URL
    other_response = _post(api, target, other_url)
    if not other_response.is_success:
        pytest.skip(
            f"the target did not run {TEMPLATE} on a second image given as a data: URL "
            f"(HTTP {other_response.status_code}), so there is nothing to compare"
        )
    other = json_object(other_response, "the pipeline response")
    other_scan, other_final = _contents(other_response, other)
    if first_scan is None or other_scan is None:
        pytest.skip("no scan step with string content to compare (judged by PIPE-002 and PIPE-003)")
    expect(
        first_scan != other_scan,
        "the scan step gave the same content for two different images",
        expected="different scan contents for two different images (the scan is given input.image_url)",
        received=f"scan content {other_scan[:120]!r} for both",
        response=other_response,
    )
    expect(
        first_final != other_final,
        "the final_output does not depend on the scan: the plan step ignored the scan's content",
        expected="different final_outputs when the scans differ (the plan is given {{scan.content}})",
        received=f"final_output {str(other_final)[:120]!r} for both images",
        response=other_response,
    )


@requirement("PIPE-006")
def test_unknown_template_is_404(api: Api, target: Target) -> None:
    tier = first_tier(target, ("pro", "internal", "free"))
    response = api.post(
        PIPELINE, _request(target.image_url, f"conform42-no-such-template-{uuid.uuid4().hex[:8]}"), tier=tier
    )
    expect_status(response, 404, message="an unknown pipeline template was not answered 404")
    expect_envelope(response)


@requirement("PIPE-007")
def test_free_tier_design_analysis_is_403(api: Api, target: Target) -> None:
    target.key("free")
    response = api.post(PIPELINE, _request(target.image_url), tier="free")
    expect_feature(target, response, "pipelines (POST /v1/pipeline)")
    expect_status(response, 403, message="a free key running design-analysis was not refused with 403")
    expect_envelope(response, error_type="permission_error")
