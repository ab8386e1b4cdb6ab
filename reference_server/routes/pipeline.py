"""POST /v1/pipeline: run a template's steps in order and answer when the chain has finished.

Order: auth (401) -> JSON body (400/422) -> template exists (404) -> every step's model open to the
tier (403, before any step runs) -> the inputs the template uses are strings (400) -> concurrency slot
(429) -> image descriptions (400 for a bad image) -> the steps (pipeline/runner.py).

The whole chain runs synchronously inside ONE of the caller's concurrency slots, like one chat request:
a pipeline is one request of the key, however many steps it has.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reference_server.errors import ApiError
from reference_server.gateway import CallerDep, GatewayDep
from reference_server.images import describe_image
from reference_server.models import resolve_model
from reference_server.pipeline import run_pipeline
from reference_server.schemas import PipelineRequest, parse_body

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/pipeline")
async def create_pipeline_run(request: Request, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    req = parse_body(await request.body(), request.headers.get("content-type"), PipelineRequest)
    template = gateway.pipelines.get(req.template)
    if template is None:
        known = ", ".join(sorted(gateway.pipelines)) or "none"
        raise ApiError(404, f"Pipeline template {req.template!r} not found; templates: {known}", "not_found")
    for step in template.steps:
        resolve_model(step.model, "chat", caller.tier)
    inputs: dict[str, str] = {}
    for name in template.inputs:
        value = req.input.get(name)
        if not isinstance(value, str) or not value:
            raise ApiError(
                400,
                f"Pipeline template {template.name!r} needs input.{name} as a non-empty string",
                "invalid_request_error",
            )
        inputs[name] = value

    slot = gateway.limiter.try_acquire(caller.key_id, caller.tier)
    try:
        image_names = {step.image_input for step in template.steps if step.image_input is not None}
        # Decoding an image can take tens of ms: off the event loop, as for chat.
        images = {
            name: await run_in_threadpool(describe_image, inputs[name], gateway.config.image_dir)
            for name in sorted(image_names)
        }
        body = await run_pipeline(template, inputs, images, gateway.chat, gateway.kv)
    finally:
        slot.release()
    return JSONResponse(body)
