"""Bootstrap intervals for the change of a percentile between two runs, or two sets of runs (no Locust
import).

Two sources of noise, two resamplings:

* **over requests** (one run against one run): each run's requests are resampled. This sees the spread
  of the requests and nothing else; requests of one run share the machine's state (a busy neighbour,
  a cold cache), so a whole run can sit higher or lower than the requests' spread suggests.
* **over runs** (``--repeat``: several runs on each side): the runs are resampled and the statistic is
  the mean over runs of each run's percentile. The run-to-run drift is then inside the interval,
  because it is what separates the per-run values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import t as student_t  # type: ignore[import-untyped, unused-ignore]

from loadtests.metrics import Histogram

__all__ = ["Estimate", "bootstrap_percentile", "compare_histograms", "compare_run_values", "t_quantile"]

#: Histograms hold microseconds (TTFT, ITL, e2e) and milli-tokens/s: both become the shown unit at 1e-3.
SCALE = 1e-3
#: Bounds the work of one comparison (a few tens of milliseconds) however many comparisons share 95 %.
_MAX_REPLICATES = 1_000_000


@dataclass(frozen=True)
class Estimate:
    """A percentile in both runs (shown unit), their difference and relative change with 95 % intervals."""

    old: float
    new: float
    diff: float
    diff_lo: float
    diff_hi: float
    rel: float | None  # None when the baseline's value is 0
    rel_lo: float | None
    rel_hi: float | None


def bootstrap_percentile(h: Histogram, q: float, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """The percentile (Histogram.percentile's rule) of ``replicates`` resamples of the requests.

    Resampling n requests and taking the r-th smallest is drawing the r-th smallest of n uniforms
    (Beta(r, n - r + 1)) and reading the histogram's quantile function there: the same distribution as
    resampling, at the cost of one draw per replicate instead of n, so tail intervals can afford many.
    """
    keys = sorted(h.counts)
    values = np.array(keys, dtype=float)
    cumulative = np.cumsum([h.counts[k] for k in keys], dtype=float)
    n = int(cumulative[-1])
    rank = max(1, math.ceil(q * n))
    u = rng.beta(rank, n - rank + 1, size=replicates)
    # The smallest bucket whose share of the requests at or below it reaches u.
    index = np.searchsorted(cumulative / n, u, side="left")
    picked: np.ndarray = values[np.minimum(index, len(values) - 1)]
    return picked


def _replicates(replicates: int, tail: float) -> int:
    """Replicates grow with the level, so about 50 lie beyond each end of the interval."""
    return min(_MAX_REPLICATES, max(replicates, math.ceil(50 / tail)))


def _estimate(old: float, new: float, boot_old: np.ndarray, boot_new: np.ndarray, tail: float) -> Estimate:
    ends = [100 * tail, 100 * (1 - tail)]
    diff_lo, diff_hi = np.percentile(boot_new - boot_old, ends)
    rel = rel_lo = rel_hi = None
    if old > 0:
        rel = new / old - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(boot_old > 0, boot_new / boot_old - 1, np.inf)
        rel_lo, rel_hi = (float(v) for v in np.percentile(ratios, ends))
    return Estimate(old, new, new - old, float(diff_lo), float(diff_hi), rel, rel_lo, rel_hi)


def compare_histograms(
    old: Histogram,
    new: Histogram,
    *,
    percentile: float = 50.0,
    level: float = 0.95,
    replicates: int = 20_000,
    seed: Any = 0,
) -> Estimate:
    """The change of ``percentile`` from ``old`` to ``new`` with a ``level`` interval, each side's
    requests resampled on its own."""
    q = percentile / 100
    old_point, new_point = old.percentile(q), new.percentile(q)
    if old_point is None or new_point is None:
        raise ValueError("both histograms need samples")
    tail = (1 - level) / 2
    replicates = _replicates(replicates, tail)
    rng = np.random.default_rng(seed)
    boot_old = bootstrap_percentile(old, q, replicates, rng) * SCALE
    boot_new = bootstrap_percentile(new, q, replicates, rng) * SCALE
    return _estimate(old_point * SCALE, new_point * SCALE, boot_old, boot_new, tail)


# ------------------------------------------------------------------------------------------ over runs
def t_quantile(level: float, df: float) -> float:
    """The t with P(|T| <= t) = ``level`` for Student's t with ``df`` degrees of freedom."""
    return float(student_t.ppf((1 + level) / 2, df))


def compare_run_values(old: Sequence[float], new: Sequence[float], *, level: float = 0.95) -> Estimate:
    """The change of a per-run value (each run's percentile, shown unit, above 0) from the ``old`` runs
    to the ``new`` ones with a ``level`` interval. Needs two runs or more on each side.

    The runs' drift is multiplicative (a busy machine or a slower server scales every latency), so the
    comparison is made on the logarithms: ``old`` and ``new`` are the geometric means over runs, ``rel``
    their ratio - 1, and the interval is Student's t for the difference of the mean logarithms with the
    two sides' spread pooled (a slowdown by a factor leaves the spread of the logarithms as it was).

    Not a bootstrap over runs: with the 2 to 5 runs a comparison has, resampled means take few distinct
    values and a bootstrap interval is far too narrow. At the level of a 12-cell table (99.6 % per
    cell), a bootstrap over runs excluded zero between runs of one setup in 30 % of cells with 2 runs a
    side, 12 % with 3 and 3-4 % with 5, where 0.4 % was due; this interval in 0.2-0.5 %. Student's t
    allows for a spread estimated from a few runs.
    """
    a, b = np.asarray(old, dtype=float), np.asarray(new, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ValueError("an interval over runs needs two runs or more on each side")
    if min(a.min(), b.min()) <= 0:
        raise ValueError("an interval over runs needs values above 0")
    log_a, log_b = np.log(a), np.log(b)
    df = a.size + b.size - 2
    pooled = ((a.size - 1) * float(log_a.var(ddof=1)) + (b.size - 1) * float(log_b.var(ddof=1))) / df
    half = t_quantile(level, df) * math.sqrt(pooled * (1 / a.size + 1 / b.size)) if pooled > 0 else 0.0
    change = float(log_b.mean() - log_a.mean())
    o, n = float(np.exp(log_a.mean())), float(np.exp(log_b.mean()))
    rel, rel_lo, rel_hi = math.expm1(change), math.expm1(change - half), math.expm1(change + half)
    return Estimate(o, n, n - o, o * rel_lo, o * rel_hi, rel, rel_lo, rel_hi)
