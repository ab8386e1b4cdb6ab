"""The capacity sweep's ladder: which load runs when, and the per-request SLOs of goodput (no Locust).

A sweep runs its steps back to back, ``step_seconds`` each, from one start time (wall clock). The
first ``warmup_seconds`` of a step are left out of its statistics: the load has just changed, and
requests sent then meet queues filled by the previous step. A request belongs to the step during
which it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_RATES", "GoodputSlo", "StepWindow", "SweepPlan"]

DEFAULT_RATES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def _ladder(text: str, what: str, integer: bool) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError as exc:
        raise ValueError(f"--sweep-{what} must be comma-separated numbers, got {text!r}") from exc
    if not values or any(v <= 0 for v in values) or (integer and any(v != int(v) for v in values)):
        raise ValueError(f"--sweep-{what} needs positive {'whole ' if integer else ''}numbers, got {text!r}")
    return values


@dataclass(frozen=True)
class GoodputSlo:
    """Per-request thresholds (ms; None: not checked) and the share of good requests a step needs."""

    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None
    attainment: float = 0.9

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.ttft_ms, self.itl_ms, self.e2e_ms))

    def met(self, ttft_ms: float | None, itl_ms: float | None, e2e_ms: float | None, streamed: bool) -> bool:
        """Every threshold given holds. TTFT and ITL are figures of streams: other requests are judged
        by their end-to-end time alone, and a stream without a first token misses a TTFT threshold."""
        if self.e2e_ms is not None and (e2e_ms is None or e2e_ms > self.e2e_ms):
            return False
        if not streamed:
            return True
        if self.ttft_ms is not None and (ttft_ms is None or ttft_ms > self.ttft_ms):
            return False
        return self.itl_ms is None or itl_ms is None or itl_ms <= self.itl_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "ttft_ms": self.ttft_ms,
            "itl_ms": self.itl_ms,
            "e2e_ms": self.e2e_ms,
            "attainment": self.attainment,
        }


@dataclass(frozen=True)
class StepWindow:
    index: int
    #: the offered load: arrivals per second (rates) or closed-loop users (users)
    load: float
    #: wall-clock seconds; statistics cover [measured_from, end)
    start: float
    measured_from: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.measured_from, 0.0)


@dataclass(frozen=True)
class SweepPlan:
    #: "rates" (open-loop arrivals per second) or "users" (closed-loop users)
    mode: str
    loads: tuple[float, ...]
    step_seconds: float = 30.0
    warmup_seconds: float = 5.0
    full: bool = False

    @classmethod
    def from_options(cls, options: Any) -> SweepPlan | None:
        """The plan the parsed harness options ask for; None without a sweep."""
        rates, users = getattr(options, "sweep_rates", ""), getattr(options, "sweep_users", "")
        if not (getattr(options, "sweep", False) or rates or users):
            return None
        if rates and users:
            raise ValueError("--sweep-rates and --sweep-users exclude each other")
        step = float(getattr(options, "sweep_step_seconds", 30.0))
        warmup = float(getattr(options, "sweep_warmup_seconds", 5.0))
        if step <= 0 or not 0 <= warmup < step:
            raise ValueError("--sweep-step-seconds must be > 0 and --sweep-warmup-seconds in [0, step)")
        mode = "users" if users else "rates"
        loads = (
            _ladder(users, "users", True)
            if users
            else (_ladder(rates, "rates", False) if rates else DEFAULT_RATES)
        )
        return cls(mode, loads, step, warmup, bool(getattr(options, "sweep_full", False)))

    @property
    def seconds(self) -> float:
        return self.step_seconds * len(self.loads)

    def step_at(self, elapsed: float) -> int | None:
        """The index of the step running ``elapsed`` seconds after the start; None once it is over."""
        if elapsed < 0:
            return 0
        index = int(elapsed // self.step_seconds)
        return index if index < len(self.loads) else None

    def load_at(self, elapsed: float) -> float:
        """The load of the step at ``elapsed`` (the last step's after the end)."""
        index = self.step_at(elapsed)
        return self.loads[-1 if index is None else index]

    def windows(self, started: float, ended: float) -> list[StepWindow]:
        """The steps that began before ``ended``, the last one cut there."""
        out: list[StepWindow] = []
        for i, load in enumerate(self.loads):
            start = started + i * self.step_seconds
            if start >= ended:
                break
            end = min(start + self.step_seconds, ended)
            out.append(StepWindow(i, load, start, min(start + self.warmup_seconds, end), end))
        return out

    def measured_windows(self, started: float, ended: float, stopped_after: int | None) -> list[StepWindow]:
        """The steps of a sweep that ran from ``started`` to ``ended`` with something measured; a sweep
        stopped early after judging ``stopped_after`` steps ends with the step under way at the stop,
        which ran its warm-up only: it is left out rather than shown as a step without requests."""
        windows = [w for w in self.windows(started, ended) if w.seconds > 0]
        return windows if stopped_after is None else windows[:stopped_after]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "loads": list(self.loads),
            "step_seconds": self.step_seconds,
            "warmup_seconds": self.warmup_seconds,
            "full": self.full,
        }
