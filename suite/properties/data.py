"""Generated data of the property tests: kept cheap for a real inference server, completed when valid.

``max_tokens`` and ``max_completion_tokens`` are capped, ``stream`` is false (so valid data carries no
``stream_options``), a batch holds at most two tasks. Positive requests name the target's model half of
the time, or nearly every valid request would be a 404.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import Case as _Case
from schemathesis.schemas import BaseSchema

from suite.samples import PIPELINE_TEMPLATE
from suite.target import Target

__all__ = ["MAX_BATCH_TASKS", "MAX_TOKENS_CAP", "Case", "is_positive", "register_hooks"]

# schemathesis's Case is generic over its operation types; the suite never looks inside those.
Case = _Case[Any]

# Small generation limits: a real vLLM engine on two CPU cores generates a few tokens per second.
MAX_TOKENS_CAP = 8
MAX_BATCH_TASKS = 2


def is_positive(case: Case) -> bool:
    """Whether schemathesis generated ``case`` as valid data (a positive case)."""
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _cheap_body(body: dict[str, Any], path: str) -> dict[str, Any]:
    """Valid or not, no generated request may ask for a long generation or a stream."""
    body = dict(body)
    if path == "/v1/chat/completions" and "max_tokens" not in body and "max_completion_tokens" not in body:
        # Without a limit the server picks one (up to the context size): minutes on a CPU engine. The
        # spec declares max_tokens, so adding it keeps a valid body valid and an invalid one invalid.
        body["max_tokens"] = MAX_TOKENS_CAP
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        # Only integers above the cap change: the cap keeps a valid value valid and an invalid one
        # (a string, a float) is left for the server to reject.
        # JSON Schema counts 16.0 as an integer, so integral floats above the cap are capped too.
        whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
        if whole and isinstance(value, int | float) and value > MAX_TOKENS_CAP:
            body[name] = MAX_TOKENS_CAP
    if isinstance(body.get("stream"), bool):
        body["stream"] = False
    tasks = body.get("tasks")
    if isinstance(tasks, list) and len(tasks) > MAX_BATCH_TASKS:
        body["tasks"] = tasks[:MAX_BATCH_TASKS]
    return body


def _complete_messages(messages: Any) -> Any:
    """Positive data only: give each message the role and content 001 requires.

    The fortytwo spec keeps 002's Message verbatim (nothing required) and says in its x-interpretation
    that a server may reject a message missing either with 400 or 422, so such data is not used to test
    acceptance.
    """
    if not isinstance(messages, list):
        return messages
    completed = []
    for message in messages:
        if isinstance(message, dict):
            message = {"role": "user", "content": "Hello!", **message}
        completed.append(message)
    return completed


def _unique_task_ids(tasks: list[Any]) -> list[Any]:
    """Positive data only: give every task of a batch its own non-empty id.

    Results are keyed by task id, so the spec says ids "should be unique within the batch" (and the
    reference server answers repeats with 422), but JSON Schema cannot require uniqueness of one
    property across array items; schemathesis' valid data may repeat an id, which is then not valid.
    A repeated (or empty, or non-string) id is replaced by one that no other task uses.
    """
    taken = {t["id"] for t in tasks if isinstance(t, dict) and isinstance(t.get("id"), str) and t["id"]}
    seen: set[str] = set()
    unique: list[Any] = []
    for number, task in enumerate(tasks, start=1):
        if isinstance(task, dict):
            task_id = task.get("id")
            if not isinstance(task_id, str) or not task_id or task_id in seen:
                candidates = (f"t{number}-{n}" for n in range(len(tasks) + 1))
                task_id = next(c for c in candidates if c not in taken)
                taken.add(task_id)
                task = {**task, "id": task_id}
            seen.add(task_id)
        unique.append(task)
    return unique


def register_hooks(schema: BaseSchema, target: Target) -> None:
    chat_paths = {"/v1/chat/completions", "/v1/batch"}

    def flatmap_case(context: schemathesis.HookContext, case: Case) -> st.SearchStrategy[Case]:
        if not isinstance(case.body, dict):
            return st.just(case)
        body = _cheap_body(case.body, case.operation.path)
        if not is_positive(case):
            case.body = body
            return st.just(case)
        if "messages" in body:
            body["messages"] = _complete_messages(body["messages"])
        if body.get("stream") is not True:
            # stream_options only means something for a stream, and OpenAI and vLLM refuse it without
            # stream true (400 "Stream options can only be defined when `stream=True`"), a dependency
            # the spec cannot state. Every generated request is unstreamed, so valid data leaves it out.
            body.pop("stream_options", None)
        if isinstance(body.get("response_format"), dict):
            # The spec can require a `type`, not "a JSON Schema a grammar engine can compile": generated
            # json_schema payloads are noise any engine may refuse, so valid data asks for plain text.
            body["response_format"] = {"type": "text"}
        if isinstance(body.get("tasks"), list):
            body["tasks"] = _unique_task_ids(
                [
                    {**task, "messages": _complete_messages(task.get("messages"))}
                    if isinstance(task, dict)
                    else task
                    for task in body["tasks"]
                ]
            )
        path = case.operation.path
        if path == "/v1/pipeline":

            def with_template(use_known: bool) -> Case:
                # The documented template needs a real image; random input for it is invalid in a way
                # the spec cannot express. An unknown (generated) template name is a declared 404.
                known = {"template": PIPELINE_TEMPLATE, "input": {"image_url": target.image_url}}
                # The documented template with any other input (000's own example included: an https
                # image the target may be unable to fetch) gets the suite's image (--image-url; by
                # default a data: URL) as well.
                use_known = use_known or body.get("template") == PIPELINE_TEMPLATE
                case.body = {**body, **known} if use_known else body
                return case

            return st.booleans().map(with_template)
        model = (
            target.chat_model
            if path in chat_paths
            else target.embed_model
            if (path == "/v1/embeddings")
            else None
        )
        if model is None or "model" not in body:
            case.body = body
            return st.just(case)

        def with_model(use_known: bool) -> Case:
            case.body = {**body, "model": model} if use_known else body
            return case

        # Half the time a model the target serves, so valid requests also reach generation and their
        # 200 bodies get checked; the other half keeps the generated ID (an unknown one is a 404).
        return st.booleans().map(with_model)

    schema.hook("flatmap_case")(flatmap_case)
