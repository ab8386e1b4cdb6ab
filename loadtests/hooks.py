"""Locust event listeners: options, configuration, distributed aggregation, summary and exit code.

Distributed mode: each worker keeps its own collector. When the master's test stops it asks every
worker it knows for its observations (custom message ``conform42_flush``); a worker stops its users
and answers with ``conform42_final`` (also sent unasked when a worker's test stops). The master
merges them, then checks the promises over the union, so overlapping requests of one key that ran on
two different workers are seen together.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadtests import sweep_shape
from loadtests.collector import Collector
from loadtests.compare import BaselineError, CompareSettings, compare_summaries, load_baseline
from loadtests.options import DEFAULTS, HarnessConfig, add_arguments
from loadtests.report import add_comparison, render, summarise, write_json
from loadtests.runtime import STATE
from loadtests.sweep_render import render_sweep
from loadtests.users import TOKENS, FreeUser, InternalUser, OpenLoopUser, ProUser
from loadtests.workload import WorkloadError

__all__: list[str] = []

log = logging.getLogger("conform42.load")
FLUSH, FINAL = "conform42_flush", "conform42_final"
#: How long the master waits for the workers' observations before it reports without them.
FINAL_WAIT_S = 20.0


class _Master:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.finals: set[str] = set()
        self.merged = Collector()


_MASTER = _Master()
_WORKER_SENT = {"sent": False}


def _configure(environment: Any) -> HarnessConfig:
    cfg = HarnessConfig.from_options(environment.parsed_options)
    STATE.config = cfg
    FreeUser.fixed_count = cfg.users["free"]
    ProUser.fixed_count = cfg.users["pro"]
    InternalUser.fixed_count = cfg.users["internal"]
    OpenLoopUser.fixed_count = 1 if cfg.open_loop_rate > 0 else 0
    sweep_shape.configure(environment, cfg)
    return cfg


#: The baseline of --compare, read at init so a missing or unusable file stops the run before any load.
_BASELINE: dict[str, Any] = {}


def _compare_settings(options: Any) -> CompareSettings:
    def g(name: str) -> Any:
        return getattr(options, name, DEFAULTS[name])

    return CompareSettings(
        baseline=g("compare") or "",
        threshold_pct=float(g("regression_threshold")),
        percentile=float(g("compare_percentile")),
    )


def _load_baseline(environment: Any) -> None:
    if getattr(environment.parsed_options, "repeat", 1) > 1:
        # Only `python -m loadtests` repeats (a child process per run); plain Locust would run once.
        log.error("--repeat needs python -m loadtests (conform42 load); this Locust runs once")
        sys.exit(2)
    settings = _compare_settings(environment.parsed_options)
    if not settings.baseline:
        return
    try:
        _BASELINE.update(settings=settings, summary=load_baseline(settings.baseline))
    except BaselineError as exc:
        log.error("%s", exc)
        sys.exit(2)  # a setup problem, like Locust's own (SystemExit passes through its event hooks)


def _on_parser(parser: Any, **_kw: Any) -> None:
    add_arguments(parser)


def _on_init(environment: Any, **_kw: Any) -> None:
    if environment.parsed_options is not None:
        try:
            _configure(environment)
        except WorkloadError as exc:  # a bad --prompts-file or length spec: stop before any load
            log.error("%s", exc)
            sys.exit(2)
    runner = environment.runner
    if environment.parsed_options is not None and not isinstance(runner, WorkerRunner):
        _load_baseline(environment)
    if isinstance(runner, MasterRunner):
        runner.register_message(FINAL, _on_final)
        events.worker_report.add_listener(_on_worker_report)  # type: ignore[no-untyped-call]
    elif isinstance(runner, WorkerRunner):
        runner.register_message(FLUSH, _on_flush, concurrent=True)


def _on_test_start(environment: Any, **_kw: Any) -> None:
    # Workers get the master's custom options with the spawn message, just before this event.
    workload_error = None
    if environment.parsed_options is not None:
        try:
            _configure(environment)
        except WorkloadError as exc:  # a worker without the master's --prompts-file, say
            log.error("%s", exc)
            workload_error = f"the workload could not be set up, so no user ran here: {exc}"
            STATE.config = None  # the users stop at once rather than send what was not asked for
    STATE.reset()
    # Requests sent before this are the run's warm-up, left out of what --compare reads.
    warmup = getattr(environment.parsed_options, "compare_warmup", DEFAULTS["compare_warmup"])
    STATE.collector.warmup_until = time.perf_counter() + float(warmup)
    if workload_error:
        STATE.collector.notices.add(workload_error)
    sweep_shape.reset()
    TOKENS.reset()
    _WORKER_SENT["sent"] = False
    if isinstance(environment.runner, MasterRunner):
        _MASTER.finals.clear()
        _MASTER.merged = Collector()


def _on_worker_report(client_id: str, data: Any, **_kw: Any) -> None:
    _MASTER.seen.add(client_id)
    sweep_shape.worker_report(client_id, data)


def _send_final(environment: Any) -> None:
    if _WORKER_SENT["sent"]:
        return
    _WORKER_SENT["sent"] = True
    environment.runner.send_message(FINAL, {**STATE.collector.to_dict(), **sweep_shape.final_payload()})


def _on_flush(environment: Any, msg: Any, **_kw: Any) -> None:
    environment.runner.stop()  # fires test_stop, which sends the observations
    _send_final(environment)


def _on_final(environment: Any, msg: Any, **_kw: Any) -> None:
    _MASTER.merged.merge_dict(msg.data)
    sweep_shape.merge_final(msg.data)
    _MASTER.finals.add(msg.node_id)
    _MASTER.seen.add(msg.node_id)


def _on_test_stop(environment: Any, **_kw: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _send_final(environment)
        return
    if not isinstance(runner, MasterRunner):
        return
    expected = _MASTER.seen | set(runner.clients.keys())
    for client_id in expected - _MASTER.finals:
        runner.send_message(FLUSH, None, client_id=client_id)
    deadline = time.monotonic() + FINAL_WAIT_S
    while expected - _MASTER.finals and time.monotonic() < deadline:
        gevent.sleep(0.05)
    missing = expected - _MASTER.finals
    if missing:
        _MASTER.merged.notices.add(
            f"no observations from {len(missing)} worker(s): {', '.join(sorted(missing))}"
        )


def _on_quitting(environment: Any, **_kw: Any) -> None:
    runner = environment.runner
    cfg = STATE.config
    if isinstance(runner, WorkerRunner) or cfg is None:
        return
    if isinstance(runner, MasterRunner):
        collector = _MASTER.merged
        collector.processes = len(_MASTER.finals)
        if not _MASTER.finals:
            collector.notices.add("no worker sent observations")
    else:
        collector = STATE.collector
    errors = [f"{row['count']} x {str(row['msg']).strip()[:200]}" for row in runner.exceptions.values()]
    thresholds = sweep_shape.run_thresholds(cfg.thresholds)
    summary = summarise(collector, thresholds, profile=cfg.profile, harness_errors=errors)
    sweep_shape.finish(summary, collector, cfg)
    if _BASELINE:
        add_comparison(summary, compare_summaries(_BASELINE["summary"], summary, _BASELINE["settings"]))
    if cfg.summary_json:
        write_json(summary, Path(cfg.summary_json))
    _PENDING_RENDER.append(summary)
    environment.process_exit_code = summary["exit_code"]


_PENDING_RENDER: list[dict[str, Any]] = []


def _on_quit(exit_code: int, **_kw: Any) -> None:
    # quit fires after Locust printed its own tables, so the verdict is the last thing on the terminal.
    while _PENDING_RENDER:
        summary = _PENDING_RENDER.pop(0)
        if "sweep" in summary:
            render_sweep(summary["sweep"], file=sys.stdout)
        render(summary, file=sys.stdout)
    sys.stdout.flush()


# Locust's EventHook is untyped; registering by call keeps the listeners themselves type-checked.
events.init_command_line_parser.add_listener(_on_parser)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
events.quit.add_listener(_on_quit)  # type: ignore[no-untyped-call]
