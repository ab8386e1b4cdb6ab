"""The capacity sweep on the Locust side (imports Locust): the load shape that steps the ladder, the
request log fed by Locust's request events, and the sweep and HTML sections of the summary.

A rates sweep keeps the users and changes the open-loop user's arrival rate (each process reads the
ladder from its own test start, so workers follow the master within the spawn message's delay, well
inside the warm-up). A users sweep turns the tier users from fixed counts into weights (the tier user
options) and has the shape ask Locust for the step's total. Without a sweep the shape is switched off
at ``init`` and Locust runs as before. The early stop looks at the records of this process, so it
works in a single process; a distributed sweep runs every step.

After the last step (or the early stop) the sweep drains: the users send nothing new and the run goes
on until the requests in flight have ended (workers say how many they have in their reports to the
master), at most ``drain_limit``. So the last step's slow answers are measured rather than cut off; a
request still in flight after that is counted as unfinished.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import LoadTestShape, events
from locust.runners import LocalRunner, MasterRunner

from loadtests.collector import Collector
from loadtests.html_report import write_html
from loadtests.options import HarnessConfig
from loadtests.report import EXIT_FAILED, Thresholds
from loadtests.request_log import RequestLog
from loadtests.runtime import STATE
from loadtests.sweep_plan import GoodputSlo, SweepPlan
from loadtests.sweep_stats import saturation, step_rows, sweep_summary
from loadtests.timeseries import time_series
from loadtests.users import FreeUser, InternalUser, OpenLoopUser, ProUser

__all__ = [
    "SWEEP",
    "SweepShape",
    "configure",
    "drain_limit",
    "finish",
    "merge_final",
    "reset",
    "run_thresholds",
    "worker_report",
]

_TIER_USERS = (FreeUser, ProUser, InternalUser)


@dataclasses.dataclass
class _Sweep:
    plan: SweepPlan | None = None
    slo: GoodputSlo = dataclasses.field(default_factory=GoodputSlo)
    html: str = ""
    #: keep a record per request (a sweep, or an HTML report's time series)
    keep: bool = False
    started: float | None = None
    stopped_early: str | None = None
    evaluated: int = 0
    log: RequestLog = dataclasses.field(default_factory=RequestLog)
    #: seconds the drain took, once over
    drained_after: float | None = None
    #: per worker (on the master): whether it drains, and its requests in flight, from its last report
    workers: dict[str, tuple[bool, int]] = dataclasses.field(default_factory=dict)


#: Seconds the drain may last beyond the longest a request may take.
DRAIN_GRACE_S = 1.0


def drain_limit(cfg: HarnessConfig) -> float:
    """The longest a drain waits: --request-timeout (a request without progress for that long times
    out), or --batch-timeout when closed-loop users send batches (polled until then), plus a second.
    A stream that keeps trickling tokens can still outlast it: it is then counted unfinished."""
    longest = cfg.request_timeout
    if cfg.weights.get("batch", 0) > 0 and sum(cfg.users.values()) > 0:  # only closed-loop users batch
        longest = max(longest, cfg.batch_timeout)
    return longest + DRAIN_GRACE_S


SWEEP = _Sweep()


def _elapsed() -> float:
    return time.time() - SWEEP.started if SWEEP.started is not None else 0.0


def configure(environment: Any, cfg: HarnessConfig) -> None:
    """Read the sweep options; set the users up for the ladder, or switch the shape off without one."""
    o = environment.parsed_options
    plan = SweepPlan.from_options(o)
    SWEEP.plan = plan
    SWEEP.slo = GoodputSlo(
        getattr(o, "slo_ttft_ms", None),
        getattr(o, "slo_itl_ms", None),
        getattr(o, "slo_e2e_ms", None),
        float(getattr(o, "slo_attainment", 0.9)),
    )
    SWEEP.html = getattr(o, "summary_html", "") or (
        str(Path(cfg.summary_json).with_suffix(".html")) if plan is not None and cfg.summary_json else ""
    )
    SWEEP.keep = plan is not None or bool(SWEEP.html)
    OpenLoopUser.rate_now = None
    if plan is None:
        environment.shape_class = None
        return
    if plan.mode == "rates":
        OpenLoopUser.fixed_count = 1
        OpenLoopUser.rate_now = lambda: plan.load_at(_elapsed())
    else:
        for user_class in _TIER_USERS:
            user_class.fixed_count = 0
            user_class.weight = cfg.users[user_class.tier]


def reset() -> None:
    """A new test: anchor the ladder at now and forget the previous run's records."""
    SWEEP.started = time.time()
    SWEEP.stopped_early = None
    SWEEP.evaluated = 0
    SWEEP.log = RequestLog()
    SWEEP.drained_after = None
    SWEEP.workers = {}
    STATE.request_log = SWEEP.log if SWEEP.keep else None
    STATE.drain_at = None if SWEEP.plan is None else SWEEP.started + SWEEP.plan.seconds


def run_thresholds(thresholds: Thresholds) -> Thresholds:
    """A sweep judges the percentile SLOs per step, not over the whole run (whose top steps are meant
    to go past them)."""
    if SWEEP.plan is None:
        return thresholds
    return dataclasses.replace(thresholds, ttft_p95_ms=None, itl_p95_ms=None, e2e_p95_ms=None)


def _on_request(
    request_type: str, name: str, response_time: float, response_length: int, exception: Any, **_kw: Any
) -> None:
    if SWEEP.keep:
        who: Hashable = gevent.getcurrent()
        SWEEP.log.event(
            who, request_type, name, response_time, response_length, exception is not None, time.time()
        )


def final_payload() -> dict[str, Any]:
    """This worker's records, for the master."""
    return SWEEP.log.to_dict() if SWEEP.keep else {}


def merge_final(data: Mapping[str, Any]) -> None:
    SWEEP.log.merge_dict(data)


def _on_report_to_master(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
    if SWEEP.plan is not None:
        data["conform42_drain"] = [STATE.draining(), SWEEP.log.in_flight]


def worker_report(client_id: str, data: Mapping[str, Any]) -> None:
    """The master: keep a worker's drain state from its periodic report."""
    drain = data.get("conform42_drain")
    if isinstance(drain, list) and len(drain) == 2:
        SWEEP.workers[client_id] = (bool(drain[0]), int(drain[1]))


class SweepShape(LoadTestShape):
    """Steps the ladder of ``SWEEP.plan``; ends the test after the last step or once saturated."""

    use_common_options = True  # -u/-r/-t are the harness's defaults: no warning that they are ignored
    _last: tuple[int, float] | tuple[int, float, list[Any]] | None = None

    def reset_time(self) -> None:
        # Locust calls this as a shape test starts, before the first tick and before test_start (which
        # resets again): a rerun from the web UI must not tick on the previous run's clock and drain.
        super().reset_time()  # type: ignore[no-untyped-call]  # Locust leaves it unannotated
        self._last = None
        reset()

    def tick(self) -> tuple[int, float] | tuple[int, float, list[Any]] | None:
        plan, cfg = SWEEP.plan, STATE.config
        if plan is None or cfg is None:
            return None
        index = plan.step_at(_elapsed())
        if index is None or SWEEP.stopped_early is not None or self._saturated(plan, cfg):
            # the users of the last step stay (idle) while the requests in flight finish
            return None if self._drained(cfg) else self._last or self._users(plan, cfg, len(plan.loads) - 1)
        self._last = self._users(plan, cfg, index)
        return self._last

    def _users(
        self, plan: SweepPlan, cfg: HarnessConfig, index: int
    ) -> tuple[int, float] | tuple[int, float, list[Any]]:
        open_loop = 1 if plan.mode == "rates" or cfg.open_loop_rate > 0 else 0
        if plan.mode == "rates":
            total = sum(cfg.users.values()) + open_loop
            return total, float(total)
        classes: list[Any] = [c for c in _TIER_USERS if c.weight > 0] + ([OpenLoopUser] if open_loop else [])
        total = int(plan.loads[index]) + open_loop
        return total, float(total), classes

    def _drained(self, cfg: HarnessConfig) -> bool:
        """Draining (the users send nothing new): True once no request is in flight, or at the deadline."""
        now = time.time()
        if STATE.drain_at is None or STATE.drain_at > now:
            STATE.drain_at = now  # an early stop drains from now
        if isinstance(self.runner, MasterRunner):  # every worker has said it drains, nothing in flight
            nodes = self.runner.clients
            workers = [SWEEP.workers.get(n.id) for n in nodes.ready + nodes.running + nodes.spawning]
            idle = bool(workers) and all(w is not None and w[0] and w[1] == 0 for w in workers)
        else:
            idle = SWEEP.log.in_flight == 0
        if idle or now >= STATE.drain_at + drain_limit(cfg):
            SWEEP.drained_after = round(now - STATE.drain_at, 3)
            return True
        return False

    def _saturated(self, plan: SweepPlan, cfg: HarnessConfig) -> bool:
        """Judge each finished step once its successor's warm-up is over (its late answers are in)."""
        if plan.full or not isinstance(self.runner, LocalRunner) or SWEEP.started is None:
            return False
        done = int((_elapsed() - plan.warmup_seconds) // plan.step_seconds)
        if done < 2 or done <= SWEEP.evaluated:
            return False
        SWEEP.evaluated = done
        windows = plan.windows(SWEEP.started, SWEEP.started + done * plan.step_seconds)
        rows = step_rows(list(SWEEP.log.records), windows, SWEEP.slo, cfg.thresholds)
        SWEEP.stopped_early = saturation(rows)
        return SWEEP.stopped_early is not None


def finish(summary: dict[str, Any], collector: Collector, cfg: HarnessConfig) -> None:
    """Add the sweep's step table to the summary (a sweep in which no step met the SLOs fails), and
    write the HTML report when one is asked for."""
    if not SWEEP.keep or SWEEP.started is None:
        return
    SWEEP.log.flush()
    started, ended = SWEEP.started, time.time()
    boundaries: list[float] = []
    plan = SWEEP.plan
    if plan is not None:
        windows = plan.measured_windows(started, ended, SWEEP.evaluated if SWEEP.stopped_early else None)
        rows = step_rows(SWEEP.log.records, windows, SWEEP.slo, cfg.thresholds)
        drain = {
            "seconds": SWEEP.drained_after,
            "unfinished": sum(1 for r in SWEEP.log.records if r.outcome == "unfinished"),
        }
        summary["sweep"] = sweep_summary(plan, rows, SWEEP.slo, SWEEP.stopped_early, drain)
        boundaries = [w.start - started for w in windows]
        if rows and summary["sweep"]["highest_load_meeting_slo"] is None:
            summary["reasons"].append("sweep: no step met the SLOs")
            summary["verdict"], summary["exit_code"] = "fail", EXIT_FAILED
    if SWEEP.html:
        series = time_series(SWEEP.log.records, collector.intervals, started, ended)
        write_html(summary, series, Path(SWEEP.html), boundaries)


events.request.add_listener(_on_request)  # type: ignore[no-untyped-call]
events.report_to_master.add_listener(_on_report_to_master)  # type: ignore[no-untyped-call]
