"""POST /v1/batch and GET /v1/batch/{batch_id}: durable asynchronous batches (reference_server.batch).

A submission is checked whole before anything is stored: JSON (400), schema incl. unique, non-empty
task ids and at most MAX_BATCH_TASKS tasks (422), model exists / is a chat model / is open to the tier
(404 / 400 / 403), every task fits the model's context with the completion cap (400 naming the task).
Only then is the batch committed to SQLite, and only after the commit is it answered 202 ``pending``.

Submitting and polling do no inference, so they take no concurrency slot; the tasks run later on the
key's own batch workers (runner.py), never on its interactive slots.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reference_server.batch import NewTask
from reference_server.batch.completion import kv_tokens_needed
from reference_server.errors import ApiError
from reference_server.gateway import CallerDep, GatewayDep
from reference_server.models import resolve_model
from reference_server.schemas import BatchRequest, parse_body

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/batch")
async def create_batch(request: Request, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    req = parse_body(await request.body(), request.headers.get("content-type"), BatchRequest)
    model = resolve_model(req.model, "chat", caller.tier)
    max_tokens = req.max_tokens or gateway.config.batch_max_tokens
    tasks = [NewTask(t.id, [m.model_dump() for m in t.messages]) for t in req.tasks]
    for task in tasks:
        try:
            kv_tokens_needed(gateway.chat, task.messages, max_tokens)
        except ApiError as exc:
            raise ApiError(exc.status, f"Task {task.task_id!r}: {exc.message}", exc.error_type) from None
    batch_id = await gateway.batches.submit(caller.key_id, caller.tier, model.id, max_tokens, tasks)
    # 202: accepted for later processing (the spec allows 200 or 202; BATCH-001).
    return JSONResponse({"batch_id": batch_id, "status": "pending", "total": len(tasks)}, 202)


@router.get("/v1/batch/{batch_id}")
async def get_batch(batch_id: str, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    view = await gateway.batches.view(batch_id, caller.key_id)
    if view is None:
        # Also for another key's batch: 404, so the existence of other callers' batches is not disclosed.
        raise ApiError(404, f"Batch {batch_id!r} not found", "not_found")
    return JSONResponse(view.as_json())
