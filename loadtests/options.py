"""The harness's own command-line options and the settings built from them (no Locust import).

``add_arguments`` is called from Locust's ``init_command_line_parser`` event, so the options appear in
``locust --help``, the web UI and ``python -m loadtests --help``, and reach distributed workers with
the spawn message. Every option also reads an environment variable (``LOCUST_`` + the option name in
capitals, Locust's convention); API keys also read ``CONFORM42_KEY_<TIER>`` like the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadtests.report import Thresholds

__all__ = ["DEMO_KEYS", "KINDS", "TIERS", "HarnessConfig", "add_arguments", "key_id"]

TIERS = ("free", "pro", "internal")
KINDS = ("chat", "stream", "embed", "batch", "pipeline")
#: The reference server's demo keys (reference_server/keys/demo_keys.toml, public, local use only). Copied,
#: not imported: the load harness never imports the reference server (ARCHITECTURE.md).
DEMO_KEYS: Mapping[str, str] = {
    "free": "sk-42ai-demo-free-0000000000000001",
    "pro": "sk-42ai-demo-pro-0000000000000001",
    "internal": "sk-42ai-demo-internal-0000000000000001",
}
_CHAT_MODELS = "42-logic,42-general,42-coder,42-think,42-vision"
#: A 1x1 PNG: the documented pipeline example names an image, and a data: URL needs no outbound fetch.
_PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


def key_id(key: str) -> str:
    """A short, non-secret name of an API key for reports and cross-process bookkeeping."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def add_arguments(parser: Any) -> None:
    """Register the harness options on Locust's (configargparse) parser."""

    def opt(name: str, **kw: Any) -> None:
        # On the parser itself, not a group: only Locust's parser understands is_secret (web UI masking);
        # other parsers (the --help of python -m loadtests) get the option without it.
        if not hasattr(parser, "secret_args_included_in_web_ui"):
            kw.pop("is_secret", None)
        parser.add_argument(name, env_var="LOCUST_" + name.lstrip("-").replace("-", "_").upper(), **kw)

    opt(
        "--api-profile",
        choices=("42ai", "fortytwo"),
        default="42ai",
        help="42ai: exchange each API key for a task token at POST /api/token; "
        "fortytwo: the key is the bearer",
    )
    for tier in TIERS:
        opt(
            f"--key-{tier}",
            default="",
            is_secret=True,
            help=f"API key of the {tier} tier (else CONFORM42_KEY_{tier.upper()}, "
            "else the reference server's demo key)",
        )
    opt("--token-url", default="", help="where POST /api/token lives (default: the host)")
    opt(
        "--token-ttl",
        type=float,
        default=0.0,
        help="assume task tokens live this many seconds instead of reading exp-iat from the token "
        "(for tests of the 401 path); 0 reads the token",
    )
    opt("--free-users", type=int, default=3, help="closed-loop users sharing the free key (default 3)")
    opt("--pro-users", type=int, default=4, help="closed-loop users sharing the pro key (default 4)")
    opt(
        "--internal-users", type=int, default=2, help="closed-loop users sharing the internal key (default 2)"
    )
    for kind, weight in zip(KINDS, (2, 4, 1, 1, 1), strict=True):
        opt(
            f"--weight-{kind}",
            type=int,
            default=weight,
            help=f"task weight of {kind} (default {weight}; 0 off)",
        )
    opt(
        "--models",
        default=_CHAT_MODELS,
        help="chat models to spread requests over; each tier uses those it may (default: all five)",
    )
    opt("--embed-model", default="42-embed", help="embedding model (default 42-embed)")
    opt("--max-tokens", type=int, default=32, help="max_tokens of every chat request (default 32)")
    opt("--prompt", default="Write a short story about a lighthouse keeper.", help="the user message")
    opt(
        "--request-timeout",
        type=float,
        default=60.0,
        help="seconds without an answer (or without stream progress) before a request counts as never "
        "answered (default 60)",
    )
    opt("--think-time", type=float, default=0.0, help="seconds each closed-loop user waits between tasks")
    opt(
        "--backoff-429",
        type=float,
        default=0.2,
        help="seconds a user waits after a 429 or 503 (default 0.2; --honour-retry-after waits Retry-After)",
    )
    opt(
        "--honour-retry-after",
        action="store_true",
        default=False,
        help="wait the Retry-After of a 429/503 before the next task, as a polite client would",
    )
    opt("--batch-tasks", type=int, default=2, help="tasks per batch (default 2)")
    opt("--batch-poll-interval", type=float, default=0.5, help="seconds between batch polls (default 0.5)")
    opt(
        "--batch-timeout",
        type=float,
        default=120.0,
        help="seconds a batch may take to complete before it counts as never answered (default 120)",
    )
    opt("--pipeline-template", default="design-analysis", help="pipeline template (default design-analysis)")
    opt(
        "--pipeline-input",
        default=json.dumps({"image_url": _PIXEL}),
        help="pipeline input as JSON (default: a 1x1 PNG data: URL as image_url)",
    )
    opt(
        "--open-loop-rate",
        type=float,
        default=0.0,
        help="open-loop arrivals per second (0: no open-loop user); requests are sent on schedule whether or "
        "not earlier ones have finished",
    )
    opt(
        "--open-loop-arrival",
        choices=("poisson", "fixed"),
        default="poisson",
        help="open-loop inter-arrival times: exponential (poisson) or constant (fixed)",
    )
    opt("--open-loop-tier", choices=TIERS, default="internal", help="whose key the open-loop user uses")
    opt(
        "--open-loop-kind",
        choices=("chat", "stream", "embed"),
        default="stream",
        help="what the open-loop user sends (default stream)",
    )
    opt(
        "--open-loop-max-in-flight",
        type=int,
        default=256,
        help="open-loop arrivals beyond this many in flight are dropped and counted (saturation)",
    )
    opt(
        "--max-dispatch-delay-ms",
        type=float,
        default=10.0,
        help="open-loop dispatch delay p99 above which the client counts as saturated (default 10)",
    )
    opt(
        "--fail-on-saturation",
        action="store_true",
        default=False,
        help="a saturated client fails the run (exit 1) instead of only being flagged",
    )
    opt(
        "--overlap-tolerance-ms",
        type=float,
        default=50.0,
        help="in-flight overlaps shorter than this are not over-admission (delivery jitter; default 50)",
    )
    opt("--slo-ttft-p95", type=float, default=None, help="fail if TTFT p95 exceeds this (ms)")
    opt("--slo-itl-p95", type=float, default=None, help="fail if per-token ITL p95 exceeds this (ms)")
    opt("--slo-e2e-p95", type=float, default=None, help="fail if end-to-end p95 exceeds this (ms)")
    opt(
        "--slo-error-rate",
        type=float,
        default=0.01,
        help="fail if failures / requests exceeds this (429 and 503 are not failures; default 0.01)",
    )
    opt("--summary-json", default="", help="write the summary (per tier and model, violations, SLOs) here")
    opt(
        "--record-file",
        default="",
        help="append one JSON line per stream (ids, stamps) here, for the accuracy benchmark",
    )


def _key(options: Any, tier: str) -> str:
    return str(
        getattr(options, f"key_{tier}", "")
        or os.environ.get(f"CONFORM42_KEY_{tier.upper()}")
        or DEMO_KEYS[tier]
    )


@dataclass(frozen=True)
class HarnessConfig:
    profile: str
    keys: Mapping[str, str]
    token_url: str
    token_ttl: float
    users: Mapping[str, int]
    weights: Mapping[str, int]
    models: tuple[str, ...]
    embed_model: str
    max_tokens: int
    prompt: str
    request_timeout: float
    think_time: float
    backoff_429: float
    honour_retry_after: bool
    batch_tasks: int
    batch_poll_interval: float
    batch_timeout: float
    pipeline_template: str
    pipeline_input: Mapping[str, Any]
    open_loop_rate: float
    open_loop_arrival: str
    open_loop_tier: str
    open_loop_kind: str
    open_loop_max_in_flight: int
    overlap_tolerance_s: float
    thresholds: Thresholds
    summary_json: str
    record_file: str

    @classmethod
    def from_options(cls, o: Any) -> HarnessConfig:
        def g(name: str, default: Any = None) -> Any:
            return getattr(o, name, default)

        pipeline_input = json.loads(g("pipeline_input") or "{}")
        if not isinstance(pipeline_input, dict):
            raise ValueError("--pipeline-input must be a JSON object")
        return cls(
            profile=g("api_profile", "42ai"),
            keys={t: _key(o, t) for t in TIERS},
            token_url=(g("token_url") or "").rstrip("/"),
            token_ttl=float(g("token_ttl", 0.0) or 0.0),
            users={t: max(0, int(g(f"{t}_users", 0) or 0)) for t in TIERS},
            weights={k: max(0, int(g(f"weight_{k}", 0) or 0)) for k in KINDS},
            models=tuple(m.strip() for m in str(g("models", _CHAT_MODELS)).split(",") if m.strip()),
            embed_model=g("embed_model", "42-embed"),
            max_tokens=int(g("max_tokens", 32)),
            prompt=g("prompt", "Hello!"),
            request_timeout=float(g("request_timeout", 60.0)),
            think_time=float(g("think_time", 0.0)),
            backoff_429=float(g("backoff_429", 0.2)),
            honour_retry_after=bool(g("honour_retry_after", False)),
            batch_tasks=max(1, int(g("batch_tasks", 2))),
            batch_poll_interval=float(g("batch_poll_interval", 0.5)),
            batch_timeout=float(g("batch_timeout", 120.0)),
            pipeline_template=g("pipeline_template", "design-analysis"),
            pipeline_input=pipeline_input,
            open_loop_rate=float(g("open_loop_rate", 0.0)),
            open_loop_arrival=g("open_loop_arrival", "poisson"),
            open_loop_tier=g("open_loop_tier", "internal"),
            open_loop_kind=g("open_loop_kind", "stream"),
            open_loop_max_in_flight=int(g("open_loop_max_in_flight", 256)),
            overlap_tolerance_s=float(g("overlap_tolerance_ms", 50.0)) / 1000,
            thresholds=Thresholds(
                ttft_p95_ms=g("slo_ttft_p95"),
                itl_p95_ms=g("slo_itl_p95"),
                e2e_p95_ms=g("slo_e2e_p95"),
                error_rate=g("slo_error_rate", 0.01),
                max_dispatch_delay_ms=float(g("max_dispatch_delay_ms", 10.0)),
                fail_on_saturation=bool(g("fail_on_saturation", False)),
            ),
            summary_json=g("summary_json", "") or "",
            record_file=g("record_file", "") or "",
        )
