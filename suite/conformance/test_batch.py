"""Batch: submit (pending), poll to completed within a deadline, results per task, ownership, 404s.

One batch of two tasks is submitted and polled once per session; the tests read that history. The
submitting key is the internal one when given (no concurrency limit, so its background tasks cannot
take a slot another test counts on).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from suite.checks import expect, expect_envelope, expect_status
from suite.conformance._helpers import (
    BATCH,
    Memo,
    expect_feature,
    first_tier,
    json_object,
    json_or_none,
    other_tier,
)
from suite.http import Api
from suite.markers import requirement
from suite.target import Target

TASK_IDS = ("t1", "t2")
COMPLETION_DEADLINE_S = 120.0
POLL_INTERVAL_S = 0.5
STATUSES = ("pending", "running", "completed", "failed")


def _tasks(ids: tuple[str, ...] = TASK_IDS) -> list[dict[str, Any]]:
    return [
        {"id": i, "messages": [{"role": "user", "content": f"Task {i}: reply with the word yes."}]}
        for i in ids
    ]


def submitter(target: Target) -> str:
    return first_tier(target, ("internal", "pro", "free"))


def submission(api: Api, memo: Memo, target: Target) -> tuple[httpx.Response, dict[str, Any]]:
    tier = submitter(target)

    def submit() -> tuple[httpx.Response, dict[str, Any]]:
        response = api.post(BATCH, {"model": target.chat_model, "tasks": _tasks()}, tier=tier)
        expect_feature(target, response, "batch processing (POST /v1/batch)")
        # 000 gives no status code for the submission: any success is "accepted" (BATCH-001).
        expect(
            response.is_success,
            "a valid batch submission was not accepted",
            expected="a 2xx status (200 or 202 expected; 000 names none)",
            received=f"HTTP {response.status_code}",
            response=response,
        )
        return response, json_object(response, "the batch submission response")

    return memo("batch-submit", submit)


def batch_id(api: Api, memo: Memo, target: Target) -> str:
    response, body = submission(api, memo, target)
    value = body.get("batch_id")
    expect(
        isinstance(value, str) and value,
        "the batch submission has no batch_id",
        expected="batch_id: a non-empty string",
        received=f"batch_id: {value!r}",
        response=response,
    )
    assert isinstance(value, str)
    return value


@dataclass
class BatchHistory:
    """Every status answer of one batch, polled until it completed or failed (or the deadline)."""

    polls: list[tuple[httpx.Response, dict[str, Any]]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def last(self) -> tuple[httpx.Response, dict[str, Any]]:
        return self.polls[-1]


def history(api: Api, memo: Memo, target: Target) -> BatchHistory:
    def poll() -> BatchHistory:
        bid = batch_id(api, memo, target)
        tier = submitter(target)
        started = time.monotonic()
        record = BatchHistory()
        while True:
            response = api.get(f"{BATCH}/{bid}", tier=tier)
            record.elapsed_s = time.monotonic() - started
            if response.status_code != 429:
                # 000 names no status for the poll: any success is an answer (BATCH-005), as for BATCH-001.
                expect(
                    response.is_success,
                    "GET /v1/batch/{batch_id} for a submitted batch failed",
                    expected="a 2xx status (200 expected; 000 names none)",
                    received=f"HTTP {response.status_code}",
                    response=response,
                )
                body = json_object(response, "the batch status")
                record.polls.append((response, body))
                if body.get("status") in ("completed", "failed"):
                    break
            if record.elapsed_s > COMPLETION_DEADLINE_S:
                break
            time.sleep(POLL_INTERVAL_S)
        # One more poll: a completed batch must stay completed (BATCH-010).
        if record.polls and record.last[1].get("status") == "completed":
            response = api.get(f"{BATCH}/{bid}", tier=tier)
            if response.is_success:
                record.polls.append((response, json_object(response, "the batch status")))
        return record

    return memo("batch-history", poll)


def completed(api: Api, memo: Memo, target: Target) -> tuple[httpx.Response, dict[str, Any]]:
    """The batch's last status answer, which must be "completed" (BATCH-007's deadline)."""
    record = history(api, memo, target)
    expect(
        record.polls,
        "the batch's status could not be read before the deadline",
        expected=f"a status answer other than 429 within {COMPLETION_DEADLINE_S:g} s",
        received="only 429 answers",
    )
    response, body = record.last
    expect(
        body.get("status") == "completed",
        "the batch did not complete",
        expected=f'status "completed" within {COMPLETION_DEADLINE_S:g} s',
        received=f"status {body.get('status')!r} after {record.elapsed_s:.0f} s",
        response=response,
    )
    return response, body


def once_completed(api: Api, memo: Memo, target: Target) -> tuple[httpx.Response, dict[str, Any]]:
    """The completed batch, for the MUSTs that hold "once a batch is completed" (BATCH-008, BATCH-009).

    The deadline is our choice (BATCH-007, a SHOULD) and a failed batch is not completed, so a batch not
    completed by the deadline makes these tests Skip with the reason, never Fail."""
    record = history(api, memo, target)
    if not record.polls:
        pytest.skip("the batch's status could not be read before the deadline (judged by BATCH-007)")
    response, body = record.last
    if body.get("status") != "completed":
        pytest.skip(
            f"the batch was not completed (status {body.get('status')!r} after {record.elapsed_s:.0f} s, "
            f"deadline {COMPLETION_DEADLINE_S:g} s): nothing to judge (the deadline is BATCH-007's)"
        )
    return response, body


@requirement("BATCH-001")
def test_batch_submission_accepted(api: Api, memo: Memo, target: Target) -> None:
    submission(api, memo, target)


@requirement("BATCH-002")
def test_submission_has_batch_id(api: Api, memo: Memo, target: Target) -> None:
    batch_id(api, memo, target)


@requirement("BATCH-003")
def test_submission_status_is_pending(api: Api, memo: Memo, target: Target) -> None:
    response, body = submission(api, memo, target)
    expect(
        body.get("status") == "pending",
        "a new batch is not pending",
        expected='status "pending"',
        received=f"status {body.get('status')!r}",
        response=response,
    )


@requirement("BATCH-004")
def test_submission_total_counts_tasks(api: Api, memo: Memo, target: Target) -> None:
    response, body = submission(api, memo, target)
    total = body.get("total")
    expect(
        total == len(TASK_IDS) and isinstance(total, int),
        "the submission's total is not the task count",
        expected=f"total {len(TASK_IDS)}",
        received=f"total {total!r}",
        response=response,
    )


@requirement("BATCH-005")
def test_status_has_documented_members(api: Api, memo: Memo, target: Target) -> None:
    """Every poll carries batch_id, status and total (000's pending answer has just these); completed and
    results are judged on the polls that say "completed", the only state 000 shows them in."""
    bid = batch_id(api, memo, target)
    for response, body in history(api, memo, target).polls:
        expect(
            body.get("batch_id") == bid
            and isinstance(body.get("status"), str)
            and body.get("total") == len(TASK_IDS),
            "the batch status lacks documented members",
            expected=f"batch_id {bid!r}, a status string, total {len(TASK_IDS)}",
            received=json.dumps(body)[:300],
            response=response,
        )
        if body.get("status") == "completed":
            expect(
                isinstance(body.get("completed"), int) and isinstance(body.get("results"), dict),
                "the completed batch's status lacks completed or results",
                expected='with status "completed": an integer completed and a results object',
                received=json.dumps(body)[:300],
                response=response,
            )


@requirement("BATCH-006")
def test_status_values_are_documented(api: Api, memo: Memo, target: Target) -> None:
    for response, body in history(api, memo, target).polls:
        expect(
            body.get("status") in STATUSES,
            "a batch status is outside the known set",
            expected=f"status in {STATUSES}",
            received=f"status {body.get('status')!r}",
            response=response,
        )


@requirement("BATCH-007")
def test_batch_completes_within_deadline(api: Api, memo: Memo, target: Target) -> None:
    completed(api, memo, target)


@requirement("BATCH-008")
def test_results_hold_every_task(api: Api, memo: Memo, target: Target) -> None:
    response, body = once_completed(api, memo, target)
    results = body.get("results")
    ok = (
        isinstance(results, dict)
        and set(results) == set(TASK_IDS)
        and all(isinstance(v, dict) and isinstance(v.get("content"), str) for v in results.values())
    )
    expect(
        ok,
        "the completed batch's results are not one {content} per task id",
        expected=f'results with exactly the keys {list(TASK_IDS)}, each {{"content": <string>}}',
        received=json.dumps(results)[:300],
        response=response,
    )


@requirement("BATCH-009")
def test_completed_count_equals_total(api: Api, memo: Memo, target: Target) -> None:
    response, body = once_completed(api, memo, target)
    expect(
        body.get("completed") == body.get("total"),
        "a completed batch has unfinished tasks",
        expected=f"completed == total ({body.get('total')!r})",
        received=f"completed {body.get('completed')!r}",
        response=response,
    )


@requirement("BATCH-010")
def test_progress_is_monotonic(api: Api, memo: Memo, target: Target) -> None:
    """completed is judged on the polls that carry it: 000's pending answer shows none (a poll without it
    is not a Fail here; a completed poll without it is BATCH-005's)."""
    previous = 0
    done = False
    for response, body in history(api, memo, target).polls:
        count, total, status = body.get("completed"), body.get("total"), body.get("status")
        counted = "completed" in body
        ok = (
            not counted
            or (
                isinstance(count, int)
                and not isinstance(count, bool)
                and isinstance(total, int)
                and previous <= count <= total
            )
        ) and not (done and status != "completed")
        expect(
            ok,
            "batch progress went backwards or out of range",
            expected=f"{previous} <= completed <= total where given, and completed stays completed",
            received=f"completed {count!r}, total {total!r}, status {status!r}",
            response=response,
        )
        if counted:
            assert isinstance(count, int)
            previous = count
        done = done or status == "completed"


@requirement("BATCH-011")
def test_duplicate_task_ids_rejected(api: Api, target: Target) -> None:
    response = api.post(
        BATCH, {"model": target.chat_model, "tasks": _tasks(("t1", "t1"))}, tier=submitter(target)
    )
    expect_feature(target, response, "batch processing (POST /v1/batch)")
    expect_status(response, 400, 422, message="a batch repeating a task id was not rejected")


@requirement("BATCH-012")
def test_unknown_batch_is_404(api: Api, target: Target) -> None:
    response = api.get(f"{BATCH}/batch_conform42_{uuid.uuid4().hex}", tier=submitter(target))
    expect_status(response, 404, message="an unknown batch id was not answered 404")
    expect_envelope(response)


@requirement("BATCH-013")
def test_other_key_cannot_read_batch(api: Api, memo: Memo, target: Target) -> None:
    bid = batch_id(api, memo, target)
    reader = other_tier(target, submitter(target))
    response = api.get(f"{BATCH}/{bid}", tier=reader)
    expect_status(response, 404, message="another API key could look up the batch")
    body = json_or_none(response)
    expect(
        not (isinstance(body, dict) and body.get("results")),
        "another API key got the batch's results",
        expected="no results",
        received=json.dumps(body)[:200],
        response=response,
    )


@requirement("BATCH-014")
def test_free_batch_with_pro_model_is_403(api: Api, target: Target) -> None:
    target.key("free")
    response = api.post(BATCH, {"model": "42-think", "tasks": _tasks()}, tier="free")
    expect_feature(target, response, "batch processing (POST /v1/batch)")
    expect_status(response, 403, message="a free key's batch for 42-think was not refused with 403")
    expect_envelope(response, error_type="permission_error")
