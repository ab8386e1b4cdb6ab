"""The capacity sweep's load shape (``loadtests.sweep_shape.SweepShape``), ticked by hand in a child
process (importing Locust patches the process with gevent): a finished ladder drains and ends, a
rerun (Locust calls ``reset_time`` as a shape test starts, before its first tick) starts from step 1
instead of ending at once on the previous run's clock, and a saturated sweep stops early and drains."""

from __future__ import annotations

import textwrap

from tests.loadtests.conftest import run_child_check

CHECK = textwrap.dedent(
    """
    import dataclasses
    import time
    from loadtests.options import HarnessConfig
    from loadtests.runtime import STATE
    from loadtests.sweep_plan import SweepPlan
    from loadtests.sweep_shape import SWEEP, SweepShape, drain_limit

    cfg = HarnessConfig.from_options(object())
    STATE.config, SWEEP.plan, SWEEP.keep = cfg, SweepPlan("rates", (1.0, 2.0), 1.0, 0.0, True), True
    shape = SweepShape()
    shape.reset_time()
    assert shape.tick() is not None and not STATE.draining()

    # The ladder is over with one request in flight: the shape holds the users while it drains.
    SWEEP.started -= 5
    STATE.drain_at = SWEEP.started + SWEEP.plan.seconds
    SWEEP.log.sent("g", "internal 42-logic stream", time.time())
    held = shape.tick()
    assert held is not None and STATE.draining(), held
    SWEEP.log.settled("g")
    assert shape.tick() is None and SWEEP.drained_after is not None

    # A rerun (the web UI's start button): a fresh clock, step 1, no drain.
    shape.reset_time()
    assert shape.tick() is not None and not STATE.draining() and SWEEP.drained_after is None

    # The drain waits at most the request timeout, or the batch timeout with batches on, plus 1 s.
    assert drain_limit(cfg) == max(cfg.request_timeout, cfg.batch_timeout) + 1.0
    open_loop_only = dataclasses.replace(cfg, users={t: 0 for t in cfg.users})
    assert drain_limit(open_loop_only) == cfg.request_timeout + 1.0  # the open loop sends no batch

    # The early stop (one process): step 2 answered a quarter of step 1's goodput, so once step 3's
    # warm-up is over the sweep stops after judging two steps, drains (nothing in flight) and ends.
    from locust.env import Environment
    from loadtests.request_log import RequestRecord
    from loadtests.users import OpenLoopUser

    SWEEP.plan = SweepPlan("rates", (1.0, 2.0, 4.0), 1.0, 0.0, False)
    shape = SweepShape()
    shape.runner = Environment(user_classes=[OpenLoopUser]).create_local_runner()
    shape.reset_time()
    SWEEP.started -= 2.5
    STATE.drain_at = SWEEP.started + SWEEP.plan.seconds
    for t in (0.1, 0.3, 0.5, 0.7, 1.5):  # four answered in step 1, one in step 2
        record = RequestRecord("internal", "stream", SWEEP.started + t, "ok", 50.0, 10.0, 5.0, 8)
        SWEEP.log.records.append(record)
    assert shape.tick() is None, "saturated: drained at once and ended"
    assert "below half" in str(SWEEP.stopped_early) and SWEEP.evaluated == 2, SWEEP.stopped_early
    assert STATE.draining() and SWEEP.drained_after is not None
    print("ok")
    """
)


def test_the_shape_drains_then_ends_reruns_afresh_and_stops_early_when_saturated():
    run_child_check(CHECK)
