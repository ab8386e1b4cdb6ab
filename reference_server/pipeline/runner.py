"""Running a pipeline: steps in order, each one's answer available to the later ones.

The caller's checks (tier for every model, inputs, images) happen before the first step, in the route.
Here a step that fails (context too long, no KV-cache room, engine error) stops the chain: it is
reported ``failed`` with its error, every later step ``skipped``, and the pipeline ``failed`` with a
null ``final_output``. Each step reports its wall time in ``duration_ms`` (null when it did not run).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from reference_server.batch.completion import complete_text, kv_tokens_needed
from reference_server.engines.base import ChatEngine
from reference_server.errors import ApiError
from reference_server.limits import KvBudget
from reference_server.pipeline.templates import Step, Template, render

__all__ = ["run_pipeline"]


def _messages(
    step: Step, inputs: Mapping[str, str], outputs: Mapping[str, str], images: Mapping[str, str]
) -> list[dict[str, str]]:
    prompt = render(step.prompt, inputs, outputs)
    if step.image_input is not None:
        # The same text form routes/chat.py gives an image part: the engines read descriptions.
        prompt += f"\n[Image 1: {images[step.image_input]}]"
    messages = [{"role": "user", "content": prompt}]
    if step.system is not None:
        messages.insert(0, {"role": "system", "content": render(step.system, inputs, outputs)})
    return messages


async def _run_step(step: Step, messages: list[dict[str, str]], engine: ChatEngine, kv: KvBudget) -> str:
    reservation = kv.reserve(kv_tokens_needed(engine, messages, step.max_tokens))
    try:
        return await complete_text(engine, step.model, messages, step.max_tokens)
    finally:
        reservation.release()


async def run_pipeline(
    template: Template, inputs: Mapping[str, str], images: Mapping[str, str], engine: ChatEngine, kv: KvBudget
) -> dict[str, Any]:
    """The response body of POST /v1/pipeline; ``images`` maps input names to image descriptions."""
    outputs: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    failed = False
    for step in template.steps:
        result: dict[str, Any] = {"id": step.id, "model": step.model}
        if failed:
            results.append({**result, "status": "skipped", "content": None, "duration_ms": None})
            continue
        started = time.perf_counter()
        try:
            content = await _run_step(step, _messages(step, inputs, outputs, images), engine, kv)
        except ApiError as exc:
            failed = True
            error = {"message": f"Step {step.id!r} failed: {exc.message}", "type": exc.error_type}
            result.update(status="failed", content=None, error=error)
        else:
            outputs[step.id] = content
            result.update(status="completed", content=content)
        result["duration_ms"] = round((time.perf_counter() - started) * 1000)
        results.append(result)
    return {
        "status": "failed" if failed else "completed",
        "results": results,
        "final_output": None if failed else outputs[template.steps[-1].id],
    }
