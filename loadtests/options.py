"""The harness's own command-line options, as one table, and the settings built from them (no Locust
import).

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

from loadtests.compare import COMPARE_OPTIONS, percentile_arg, threshold_arg
from loadtests.harness_option import HarnessOption
from loadtests.report import Thresholds
from loadtests.runs import REPEAT_OPTIONS
from loadtests.workload import WORKLOAD_OPTIONS, Workload

__all__ = [
    "DEFAULTS",
    "DEMO_KEYS",
    "HARNESS_OPTIONS",
    "KINDS",
    "TIERS",
    "HarnessConfig",
    "HarnessOption",
    "add_arguments",
    "key_id",
]

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


HARNESS_OPTIONS: tuple[HarnessOption, ...] = (
    HarnessOption("sweep", flag=True, default=False, help="capacity sweep (default rates 1,2,...,32 per s)"),
    HarnessOption("sweep_rates", help="sweep steps: open-loop arrivals per s, e.g. 1,2,4,8"),
    HarnessOption("sweep_users", help="sweep steps: closed-loop users, spread like the tier users"),
    HarnessOption("sweep_step_seconds", parse=float, default=30.0, help="seconds per sweep step (30)"),
    HarnessOption("sweep_warmup_seconds", parse=float, default=5.0, help="left out of each step (5 s)"),
    HarnessOption("sweep_full", flag=True, default=False, help="no early stop once saturated"),
    HarnessOption("slo_ttft_ms", parse=float, default=None, help="goodput: TTFT of a request <= this"),
    HarnessOption("slo_itl_ms", parse=float, default=None, help="goodput: mean ITL of a stream <= this"),
    HarnessOption("slo_e2e_ms", parse=float, default=None, help="goodput: end-to-end of a request <= this"),
    HarnessOption("slo_attainment", parse=float, default=0.9, help="share of good requests a step needs"),
    HarnessOption("summary_html", help="write the HTML load report (plots, tables) here"),
    HarnessOption(
        "api_profile",
        choices=("42ai", "fortytwo"),
        default="42ai",
        help="42ai: exchange each API key for a task token at POST /api/token; "
        "fortytwo: the key is the bearer",
    ),
    *(
        HarnessOption(
            f"key_{tier}",
            secret=True,
            help=f"API key of the {tier} tier (else CONFORM42_KEY_{tier.upper()}, "
            "else the reference server's demo key)",
        )
        for tier in TIERS
    ),
    HarnessOption("token_url", help="where POST /api/token lives (default: the host)"),
    HarnessOption(
        "token_ttl",
        parse=float,
        default=0.0,
        help="assume task tokens live this many seconds instead of reading exp-iat from the token "
        "(for tests of the 401 path); 0 reads the token",
    ),
    *(
        HarnessOption(
            f"{tier}_users",
            parse=int,
            default=users,
            help=f"closed-loop users sharing the {tier} key (default {users})",
        )
        for tier, users in zip(TIERS, (3, 4, 2), strict=True)
    ),
    *(
        HarnessOption(
            f"weight_{kind}",
            parse=int,
            default=weight,
            help=f"task weight of {kind} (default {weight}; 0 off)",
        )
        for kind, weight in zip(KINDS, (2, 4, 1, 1, 1), strict=True)
    ),
    HarnessOption(
        "models",
        default=_CHAT_MODELS,
        help="chat models to spread requests over; each tier uses those it may (default: all five)",
    ),
    HarnessOption("embed_model", default="42-embed", help="embedding model (default 42-embed)"),
    HarnessOption("max_tokens", parse=int, default=32, help="max_tokens of every chat request (default 32)"),
    HarnessOption(
        "prompt", default="Write a short story about a lighthouse keeper.", help="the user message"
    ),
    *WORKLOAD_OPTIONS,
    HarnessOption(
        "request_timeout",
        parse=float,
        default=60.0,
        help="seconds without an answer (or without stream progress) before a request counts as "
        "never answered (default 60)",
    ),
    HarnessOption(
        "think_time", parse=float, default=0.0, help="seconds each closed-loop user waits between tasks"
    ),
    HarnessOption(
        "backoff_429",
        parse=float,
        default=0.2,
        help="seconds a user waits after a 429 or 503 (default 0.2; --honour-retry-after waits Retry-After)",
    ),
    HarnessOption(
        "honour_retry_after",
        flag=True,
        default=False,
        help="wait the Retry-After of a 429/503 before the next task, as a polite client would",
    ),
    HarnessOption("batch_tasks", parse=int, default=2, help="tasks per batch (default 2)"),
    HarnessOption(
        "batch_poll_interval", parse=float, default=0.5, help="seconds between batch polls (default 0.5)"
    ),
    HarnessOption(
        "batch_timeout",
        parse=float,
        default=120.0,
        help="seconds a batch may take to complete before it counts as never answered (default 120)",
    ),
    HarnessOption(
        "pipeline_template", default="design-analysis", help="pipeline template (default design-analysis)"
    ),
    HarnessOption(
        "pipeline_input",
        default=json.dumps({"image_url": _PIXEL}),
        help="pipeline input as JSON (default: a 1x1 PNG data: URL as image_url)",
    ),
    HarnessOption(
        "open_loop_rate",
        parse=float,
        default=0.0,
        help="open-loop arrivals per second (0: no open-loop user); requests are sent on schedule "
        "whether or not earlier ones have finished",
    ),
    HarnessOption(
        "open_loop_arrival",
        choices=("poisson", "fixed"),
        default="poisson",
        help="open-loop inter-arrival times: exponential (poisson) or constant (fixed)",
    ),
    HarnessOption(
        "open_loop_tier", choices=TIERS, default="internal", help="whose key the open-loop user uses"
    ),
    HarnessOption(
        "open_loop_kind",
        choices=("chat", "stream", "embed"),
        default="stream",
        help="what the open-loop user sends (default stream)",
    ),
    HarnessOption(
        "open_loop_max_in_flight",
        parse=int,
        default=256,
        help="open-loop arrivals beyond this many in flight are dropped and counted (saturation)",
    ),
    HarnessOption(
        "max_dispatch_delay_ms",
        parse=float,
        default=10.0,
        help="open-loop dispatch delay p99 above which the client counts as saturated (default 10)",
    ),
    HarnessOption(
        "fail_on_saturation",
        flag=True,
        default=False,
        help="a saturated client fails the run (exit 1) instead of only being flagged",
    ),
    HarnessOption(
        "overlap_tolerance_ms",
        parse=float,
        default=50.0,
        help="in-flight overlaps shorter than this are not over-admission (delivery jitter; default 50)",
    ),
    HarnessOption("slo_ttft_p95", parse=float, default=None, help="fail if TTFT p95 exceeds this (ms)"),
    HarnessOption(
        "slo_itl_p95", parse=float, default=None, help="fail if per-token ITL p95 exceeds this (ms)"
    ),
    HarnessOption("slo_e2e_p95", parse=float, default=None, help="fail if end-to-end p95 exceeds this (ms)"),
    HarnessOption(
        "slo_error_rate",
        parse=float,
        default=0.01,
        help="fail if failures / requests exceeds this (429 and 503 are not failures; default 0.01)",
    ),
    HarnessOption("summary_json", help="write the summary (per tier and model, violations, SLOs) here"),
    HarnessOption(
        "record_file", help="append one JSON line per stream (ids, stamps) here, for the accuracy benchmark"
    ),
    *REPEAT_OPTIONS,
    HarnessOption(
        "compare",
        help="after the run, compare it with this earlier --summary-json (the baseline): per tier, model "
        "and metric the change with a bootstrap 95-percent interval; a regression fails the run (exit 1)",
    ),
    HarnessOption(
        "regression_threshold",
        parse=threshold_arg,
        default=10.0,
        help="with --compare: a slowdown (or loss of tokens/s) smaller than this many percent is never a "
        "regression (default 10)",
    ),
    HarnessOption(
        "compare_percentile",
        parse=percentile_arg,
        default=50.0,
        help="with --compare: the percentile of each metric that is compared (default 50, the median)",
    ),
    *COMPARE_OPTIONS,
)
DEFAULTS: Mapping[str, Any] = {option.name: option.default for option in HARNESS_OPTIONS}
#: The harness options by name: their spellings (``flag_name``, ``env``) come from here.
OPTIONS_BY_NAME: Mapping[str, HarnessOption] = {option.name: option for option in HARNESS_OPTIONS}


def add_arguments(parser: Any) -> None:
    """Register the harness options on Locust's (configargparse) parser, and switch its abbreviations
    off: ``python -m loadtests`` reads a few options before Locust does (the users to start, whether it
    sweeps or repeats) and must read the same words (``harness_option.read_options``)."""
    parser.allow_abbrev = False
    # On the parser itself, not a group: only Locust's parser understands is_secret (web UI masking);
    # other parsers (the --help of python -m loadtests) get the option without it.
    masks = hasattr(parser, "secret_args_included_in_web_ui")
    for option in HARNESS_OPTIONS:
        kw: dict[str, Any] = {"default": option.default, "help": option.help}
        if option.flag:
            kw["action"] = "store_true"
        else:
            kw.update(type=option.parse, choices=option.choices)
        if option.secret and masks:
            kw["is_secret"] = True
        parser.add_argument(option.flag_name, env_var=option.env, **kw)


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
    #: what the chat requests ask (--prompt-tokens, --output-tokens, --prompts-file, --turns)
    workload: Workload
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
        def g(name: str) -> Any:
            return getattr(o, name, DEFAULTS[name])

        pipeline_input = json.loads(g("pipeline_input") or "{}")
        if not isinstance(pipeline_input, dict):
            raise ValueError("--pipeline-input must be a JSON object")
        return cls(
            profile=g("api_profile"),
            keys={t: _key(o, t) for t in TIERS},
            token_url=(g("token_url") or "").rstrip("/"),
            token_ttl=float(g("token_ttl") or 0.0),
            users={t: max(0, int(g(f"{t}_users") or 0)) for t in TIERS},
            weights={k: max(0, int(g(f"weight_{k}") or 0)) for k in KINDS},
            models=tuple(m.strip() for m in str(g("models")).split(",") if m.strip()),
            embed_model=g("embed_model"),
            max_tokens=int(g("max_tokens")),
            prompt=g("prompt"),
            workload=Workload.from_options(g),
            request_timeout=float(g("request_timeout")),
            think_time=float(g("think_time")),
            backoff_429=float(g("backoff_429")),
            honour_retry_after=bool(g("honour_retry_after")),
            batch_tasks=max(1, int(g("batch_tasks"))),
            batch_poll_interval=float(g("batch_poll_interval")),
            batch_timeout=float(g("batch_timeout")),
            pipeline_template=g("pipeline_template"),
            pipeline_input=pipeline_input,
            open_loop_rate=float(g("open_loop_rate")),
            open_loop_arrival=g("open_loop_arrival"),
            open_loop_tier=g("open_loop_tier"),
            open_loop_kind=g("open_loop_kind"),
            open_loop_max_in_flight=int(g("open_loop_max_in_flight")),
            overlap_tolerance_s=float(g("overlap_tolerance_ms")) / 1000,
            thresholds=Thresholds(
                ttft_p95_ms=g("slo_ttft_p95"),
                itl_p95_ms=g("slo_itl_p95"),
                e2e_p95_ms=g("slo_e2e_p95"),
                error_rate=g("slo_error_rate"),
                max_dispatch_delay_ms=float(g("max_dispatch_delay_ms")),
                fail_on_saturation=bool(g("fail_on_saturation")),
            ),
            summary_json=g("summary_json") or "",
            record_file=g("record_file") or "",
        )
