"""Bounds of the property tests: examples per operation, the wall-clock budget and the seed.

``CONFORM42_PROPERTY_EXAMPLES`` examples per operation and run (default 10), a wall-clock budget for the
whole property part (``CONFORM42_PROPERTY_MAX_TIME`` seconds, default 80), no shrinking, no example
database, derandomised unless ``CONFORM42_PROPERTY_SEED`` is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import hypothesis
from hypothesis import HealthCheck, Phase

__all__ = ["Budget", "Clock"]


def _env_number(name: str, default: float, env: Mapping[str, str]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be > 0, not {raw!r}")
    return value


@dataclass(frozen=True)
class Budget:
    """How much generation the property tests may do (from the environment)."""

    examples: int = 10
    max_time_s: float = 80.0
    seed: int | None = None
    stateful_steps: int = 6

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Budget:
        env = os.environ if env is None else env
        seed_raw = env.get("CONFORM42_PROPERTY_SEED", "").strip()
        try:
            seed = int(seed_raw) if seed_raw else None
        except ValueError:
            raise ValueError(f"CONFORM42_PROPERTY_SEED must be an integer, not {seed_raw!r}") from None
        return cls(
            examples=int(_env_number("CONFORM42_PROPERTY_EXAMPLES", cls.examples, env)),
            max_time_s=_env_number("CONFORM42_PROPERTY_MAX_TIME", cls.max_time_s, env),
            seed=seed,
        )

    def settings(self, max_examples: int | None = None) -> hypothesis.settings:
        return hypothesis.settings(
            max_examples=max_examples or self.examples,
            deadline=None,  # network latency is not the code under test
            derandomize=self.seed is None,
            database=None,  # no .hypothesis folder in the user's checkout, no replayed examples
            # No shrinking: each shrink step is another request to a slow server; the first failing
            # example is reported as found.
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            verbosity=hypothesis.Verbosity.quiet,
        )


@dataclass
class Clock:
    """The shared wall-clock budget of the property part of one run."""

    budget: Budget
    runs: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    def remaining(self) -> float:
        return self.budget.max_time_s - (time.monotonic() - self.started)

    def slot(self) -> float:
        """Seconds the next run may take: an equal share of what is left, so later runs are not starved."""
        left = max(self.runs - self.done, 1)
        return self.remaining() / left

    def finished_one(self) -> None:
        self.done += 1
