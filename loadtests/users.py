"""Locust users: one closed-loop class per tier and an open-loop user. Imports Locust (and gevent).

A user picks the kind of request and runs it through its ``loadtests.calls.Calls`` (the LLM calls,
over geventhttpclient as ``loadtests.transport`` sets it up), which books every measurement in
Locust's own statistics and the harness collector (``loadtests.outcomes``).

Rows in Locust's statistics, per ``<tier> <model> <kind>``:
  POST/GET  end-to-end latency of a successful or failed request (429/503 excluded)
  TTFT      time to first content chunk (ms)          ITL     mean per-token gap of one stream (ms)
  TOK/S     output tokens per second of one request (the "ms" column holds tokens/s)
  429, 503  answers counted apart from failures      TOKEN   task-token exchanges (not request latency)
  DISPATCH  open-loop dispatch delay (actual minus intended send time)
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import gevent  # type: ignore[import-untyped]
from gevent.lock import Semaphore  # type: ignore[import-untyped]
from gevent.pool import Group  # type: ignore[import-untyped]
from locust import FastHttpUser, task
from locust.exception import StopUser

from loadtests.calls import CONNECT_TIMEOUT_S, Calls
from loadtests.options import HarnessConfig
from loadtests.runtime import STATE
from loadtests.tokens import Tokens

__all__ = ["TOKENS", "FreeUser", "HarnessUser", "InternalUser", "OpenLoopUser", "ProUser", "TierUser"]


def _cfg() -> HarnessConfig:
    if STATE.config is None:
        raise StopUser("the conform42 harness is not configured (load loadtests/locustfile.py)")
    return STATE.config


#: The task tokens of this process, shared by its users (greenlets: a gevent lock per key).
TOKENS = Tokens(Semaphore)
#: How long a user idles in a capacity sweep's drain before it looks again (the shape ends the run).
_DRAIN_POLL_S = 0.2
#: Numbers the users of this process, so each draws its own requests from --workload-seed.
_USER_NUMBERS = itertools.count()


class HarnessUser(FastHttpUser):
    """What the closed-loop and the open-loop users share: the calls, token handling and back-off.

    No task here: Locust gives a user class every task of its bases as well as its own, so a task
    on a shared base would also run in the open-loop user, as a closed-loop request now and then.
    """

    abstract = True
    tier: ClassVar[str] = "free"
    #: Sessions of --turns requests; the open loop sends single-turn requests from many greenlets.
    multi_turn: ClassVar[bool] = True
    network_timeout = 60.0
    connection_timeout = CONNECT_TIMEOUT_S

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        cfg = _cfg()
        self.cfg = cfg
        self.models = [m for m in cfg.models if self.tier != "free" or m in ("42-logic", "42-general")] or [
            "42-logic"
        ]
        host = str(self.host)  # FastHttpUser's __init__ stops the test when there is no host
        worker = getattr(environment.runner, "worker_index", 0)
        stream = f"{worker}/{self.tier}/{next(_USER_NUMBERS)}"
        conversation = cfg.workload.conversation(stream, multi_turn=self.multi_turn)
        events = environment.events.request
        self.calls = Calls(self.tier, cfg, host, self._pool_size(), events, TOKENS, _cfg, conversation)

    def _pool_size(self) -> int:
        return 2

    def on_stop(self) -> None:
        self.calls.close()

    def wait_time(self) -> float:
        return self.cfg.think_time + self.calls.outcomes.take_backoff()

    def run_kind(self, kind: str, intended: float | None = None) -> None:
        model = random.choice(self.models)
        calls = self.calls
        if kind in ("stream", "chat"):
            model = calls.conversation.keep_model(model)  # a session talks to one model
        body: Callable[[], None]
        if kind == "stream":
            body = partial(calls.stream, model, intended)
        elif kind == "chat":
            body = partial(calls.chat, model, intended)
        elif kind == "embed":
            model = self.cfg.embed_model
            body = partial(calls.embed, model, intended)
        elif kind == "batch":
            body = partial(calls.batch, model)
        elif kind == "pipeline":
            model = self.cfg.pipeline_template
            body = partial(calls.pipeline, model)
        else:
            return
        name = f"{self.tier} {model} {kind}"
        log, me = STATE.request_log, gevent.getcurrent()
        if log is not None:
            log.sent(me, name, time.time())
        try:
            calls.outcomes.guard(model, name, "POST", body)
        except gevent.GreenletExit:
            if log is not None:  # killed mid-request (the run ended, or Locust stopped this user)
                log.abandon(me)
            raise
        except BaseException:
            if log is not None:
                log.settled(me)  # a harness error: no longer in flight
            raise
        if log is not None:
            log.settled(me)


class TierUser(HarnessUser):
    """A closed-loop user of one tier: picks a task by the configured weights, waits for its answer."""

    abstract = True

    @task
    def next_task(self) -> None:
        cfg = self.cfg
        if STATE.draining():
            gevent.sleep(_DRAIN_POLL_S)  # nothing new: the requests in flight finish
            return
        kinds = [k for k, w in cfg.weights.items() if w > 0 and not STATE.is_disabled(self.tier, k)]
        if not kinds:
            raise StopUser(f"{self.tier}: no task left to run (all weights 0 or switched off)")
        kind = random.choices(kinds, weights=[cfg.weights[k] for k in kinds])[0]
        self.run_kind(kind)


class FreeUser(TierUser):
    tier = "free"


class ProUser(TierUser):
    tier = "pro"


class InternalUser(TierUser):
    tier = "internal"


class OpenLoopUser(HarnessUser):
    """Sends at a fixed or Poisson arrival rate, whether or not earlier requests have finished.

    Each arrival has an intended send time on the schedule; the request greenlet stamps its actual
    start, and the difference (dispatch delay) is recorded: when it grows, the load generator, not
    the server, is the bottleneck (coordinated omission made visible). Latency from the intended time
    is recorded as well.
    """

    tier = "internal"
    multi_turn = False
    #: The arrival rate now, when it changes during the run (a capacity sweep); None: --open-loop-rate.
    rate_now: ClassVar[Callable[[], float] | None] = None

    def __init__(self, environment: Any) -> None:
        type(self).tier = _cfg().open_loop_tier
        super().__init__(environment)
        self.inflight = Group()

    def _pool_size(self) -> int:
        return max(2, self.cfg.open_loop_max_in_flight)

    def wait_time(self) -> float:
        return 0.0

    def on_stop(self) -> None:
        self.inflight.kill(block=False)
        super().on_stop()

    @task
    def next_task(self) -> None:
        cfg = self.cfg
        rate_now = type(self).rate_now or (lambda: cfg.open_loop_rate)
        if rate_now() <= 0:
            raise StopUser("open loop off (--open-loop-rate 0)")
        poisson = cfg.open_loop_arrival == "poisson"

        def gap() -> float:
            rate = rate_now()
            return random.expovariate(rate) if poisson else 1.0 / rate

        intended = time.perf_counter()
        collector = STATE.collector
        while True:
            if STATE.draining():
                gevent.sleep(_DRAIN_POLL_S)
                intended = time.perf_counter()
                continue
            intended += gap()
            delay = intended - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            if STATE.draining():
                continue  # the arrival fell into the drain: not sent
            STATE.collector.arrivals += 1
            if len(self.inflight) >= cfg.open_loop_max_in_flight:
                collector.dropped_arrivals += 1
                if STATE.request_log is not None:
                    STATE.request_log.dropped(self.tier, cfg.open_loop_kind, time.time())
                continue
            arrival = self.inflight.spawn(self.run_kind, cfg.open_loop_kind, intended)
            if STATE.request_log is not None:
                # In flight from now, before the greenlet first runs (and names its model): a drain that
                # looks in between must not see nothing in flight and end the run under this arrival.
                STATE.request_log.sent(arrival, f"{self.tier} - {cfg.open_loop_kind}", time.time())
