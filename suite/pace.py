"""The target's generation speed, measured once per session, and the deadlines derived from it.

A fixed request timeout is wrong both ways: 30 s is far too long to notice a hang on a fast server and
too short for a pipeline of two 200-token steps on a CPU engine that is also running a batch. So the
session measures one short streamed completion (time to first token, tokens per second) and every
request that asks for generation gets a deadline proportional to the work it asks for: ``max_tokens``,
times the steps of a pipeline, times a safety factor for a machine whose other core is busy. The
configured request timeout (``--timeout``) stays the floor: no deadline is ever shorter.

The same session also measures the *path*: the slowest of a few round trips of a request that asks for
no generation (``GET /v1/models``). A proxy, a slow network or a busy machine between the suite and the
server shows there, and every timing judgement (a stream that overlapped another, a request that was
held back) must clear ``Pace.margin_s``, a margin above it, before it can count as evidence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "ASSUMED_STEP_TOKENS",
    "MARGIN_FLOOR_S",
    "PATH_FACTOR",
    "PIPELINE_STEPS",
    "Pace",
    "measure_pace",
    "measure_path",
]

#: Tokens asked for by the measurement: enough to see the decode speed, cheap on a CPU engine.
PROBE_TOKENS = 32
#: A deadline is this many times the expected generation time (a loaded machine, a second client).
SAFETY_FACTOR = 4.0
#: Plus this much, for queueing in front of the engine and start-up costs that do not scale.
SLACK_S = 10.0
#: 000 documents the pipeline template with two steps (scan, plan).
PIPELINE_STEPS = 2
#: A step whose cap the client cannot see (a pipeline step, a batch task) is assumed to generate this many.
ASSUMED_STEP_TOKENS = 512
#: No derived deadline is longer than this many times the floor (a mismeasured speed must not turn a
#: hang into an hour's wait).
CAP_FACTOR = 10.0
#: When nothing could be measured: a slow engine, so deadlines err on the long side.
_FALLBACK_TTFT_S = 2.0
_FALLBACK_TOKENS_PER_S = 5.0
#: Round trips of ``GET /v1/models`` timed to measure the path (a proxy that delays requests at random
#: shows its worst within a few).
PATH_SAMPLES = 6
#: A timing judgement needs this many times the slowest round trip seen ...
PATH_FACTOR = 2.0
#: ... and never less than this (the suite's reader threads on a busy machine).
MARGIN_FLOOR_S = 0.05


@dataclass(frozen=True)
class Pace:
    """Generation speed of the target and the configured timeout floor."""

    ttft_s: float = _FALLBACK_TTFT_S
    tokens_per_s: float = _FALLBACK_TOKENS_PER_S
    floor_s: float = 30.0
    measured: bool = False
    note: str = "not measured"
    #: The measurement got no answer within the floor: a target that does not answer is not a slow one,
    #: so every deadline stays at the floor (otherwise each unanswered request would wait the cap).
    unanswered: bool = False
    #: The slowest round trip of a request that asks for no generation (0: not measured).
    path_s: float = 0.0

    @property
    def margin_s(self) -> float:
        """Seconds a timing judgement allows for the path between the suite and the server: a moment
        the client saw is placed up to this far from the moment the server acted."""
        return max(MARGIN_FLOOR_S, PATH_FACTOR * self.path_s)

    def generation_s(self, max_tokens: int, steps: int = 1) -> float:
        """Expected seconds for ``steps`` sequential generations of ``max_tokens`` each."""
        return steps * (self.ttft_s + max_tokens / self.tokens_per_s)

    def deadline(self, max_tokens: int | None = None, steps: int = 1) -> float:
        """Seconds a request for that much generation may take before it counts as unanswered."""
        if self.unanswered:
            return self.floor_s
        tokens = ASSUMED_STEP_TOKENS if max_tokens is None else max(int(max_tokens), 1)
        derived = SAFETY_FACTOR * self.generation_s(tokens, steps) + SLACK_S
        return max(self.floor_s, min(derived, CAP_FACTOR * self.floor_s))

    def pipeline_deadline(self) -> float:
        return self.deadline(None, steps=PIPELINE_STEPS)

    def request_deadline(self, path: str, body: Any, default_tokens: int | None = None) -> float:
        """The deadline of a request to ``path`` with JSON ``body``: a pipeline's steps, a chat
        completion's cap (``default_tokens`` when it names none), or the floor for anything else."""
        if path.endswith("/v1/pipeline"):
            return self.pipeline_deadline()
        if path.endswith("/v1/chat/completions") and isinstance(body, dict):
            caps = [
                v
                for v in (body.get("max_tokens"), body.get("max_completion_tokens"))
                if isinstance(v, int) and not isinstance(v, bool) and v > 0
            ]
            return self.deadline(min(caps) if caps else default_tokens)
        return self.floor_s

    def describe(self) -> str:
        if self.unanswered:
            return f"target speed not measured ({self.note}); every deadline stays at {self.floor_s:g} s"
        if not self.measured:
            return f"target speed not measured ({self.note}); deadlines assume a slow engine"
        return (
            f"target speed: first token after {self.ttft_s * 1000:.0f} ms, {self.tokens_per_s:.1f} tokens/s "
            f"({self.note}); deadline for max_tokens 16: {self.deadline(16):.0f} s, "
            f"pipeline: {self.pipeline_deadline():.0f} s; path: slowest round trip "
            f"{self.path_s * 1000:.0f} ms, timing margin {self.margin_s * 1000:.0f} ms"
        )


def _content_of(data: str) -> str | None:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        return None
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    delta = choices[0].get("delta")
    if not isinstance(delta, dict):
        return None
    # A reasoning model's first tokens may arrive as reasoning_content: generation all the same.
    text = delta.get("content") or delta.get("reasoning_content")
    return text if isinstance(text, str) and text else None


def measure_path(client: httpx.Client, url: str, headers: dict[str, str], *, floor_s: float) -> float:
    """The slowest of ``PATH_SAMPLES`` round trips of ``GET url`` (any answer counts); never raises.

    A request that fails is tried again (at most ``PATH_SAMPLES`` failures in all: a reset connection is
    no measure of the path); one that times out counts as taking ``floor_s``, and when every try failed
    so does the path: the margin then grows so large that the timing judgements Skip instead of reading
    a broken path as evidence."""
    slowest = 0.0
    samples = failures = 0
    while samples < PATH_SAMPLES:
        started = time.monotonic()
        try:
            client.get(url, headers=headers, timeout=floor_s)
        except httpx.TimeoutException:
            return floor_s
        except httpx.HTTPError:
            failures += 1
            if failures >= PATH_SAMPLES:
                return floor_s
            continue
        samples += 1
        slowest = max(slowest, time.monotonic() - started)
    return slowest


def measure_pace(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    model: str,
    *,
    floor_s: float,
    path_url: str | None = None,
) -> Pace:
    """Stream one short completion and time it; never raises (a failure gives the slow fallback).

    Tokens per second counts content events after the first one over the time they took, so the
    figure is the decode speed the client sees; TTFT is the time to the first content event. With
    ``path_url`` the path is measured too (``measure_path``), after the completion (warm connections).
    """
    pace = _measure_speed(client, url, headers, model, floor_s=floor_s)
    if path_url is None or pace.unanswered:
        return pace
    return dataclasses.replace(pace, path_s=measure_path(client, path_url, headers, floor_s=floor_s))


def _measure_speed(
    client: httpx.Client, url: str, headers: dict[str, str], model: str, *, floor_s: float
) -> Pace:
    # A long text asked for, so the model does not stop after a few tokens.
    prompt = "Write a long story about a lighthouse keeper, at least 300 words."
    messages = [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": PROBE_TOKENS, "stream": True}
    with contextlib.suppress(httpx.HTTPError):
        # A first request after an engine start is slow (warm-up): not the speed to plan with.
        client.post(url, json={**body, "max_tokens": 1, "stream": False}, headers=headers, timeout=floor_s)
    started = time.monotonic()
    stamps: list[float] = []
    try:
        with client.stream("POST", url, json=body, headers=headers, timeout=floor_s) as response:
            if response.status_code != 200:
                return Pace(floor_s=floor_s, note=f"the measurement was answered HTTP {response.status_code}")
            for line in response.iter_lines():
                if time.monotonic() - started > floor_s:
                    break
                if line.startswith("data:") and _content_of(line[5:].strip()) is not None:
                    stamps.append(time.monotonic())
    except httpx.TimeoutException as exc:
        note = f"no answer within {floor_s:g} s: {type(exc).__name__}"
        return Pace(floor_s=floor_s, note=note, unanswered=True)
    except httpx.HTTPError as exc:
        return Pace(floor_s=floor_s, note=f"the measurement failed: {type(exc).__name__}")
    if len(stamps) < 8:
        return Pace(floor_s=floor_s, note=f"the measurement streamed {len(stamps)} content events")
    decode_s = max(stamps[-1] - stamps[0], 1e-3)
    return Pace(
        ttft_s=stamps[0] - started,
        tokens_per_s=(len(stamps) - 1) / decode_s,
        floor_s=floor_s,
        measured=True,
        note=f"one stream of {len(stamps)} content events, model {model}",
    )
