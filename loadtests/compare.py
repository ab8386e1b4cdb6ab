"""This run against a saved one (the baseline): per tier, model and metric, the change of a percentile
with a 95 % interval, and whether it is a regression (no Locust import).

The interval (``loadtests.intervals``) is over runs when both summaries pooled two runs or more
(``--repeat``): the per-run percentiles of the two sides are compared, so run-to-run drift is in it.
Otherwise it is a bootstrap over requests, described here.

Every summary keeps, per tier and model, the harness's histograms of per-request values
(``histograms``: TTFT, the mean per-token ITL of each stream, end-to-end time, tokens/s). Their buckets
hold three significant digits, so resampling the buckets is resampling the requests to within 0.05 %,
and they merge exactly across distributed workers. Requests, not tokens, are resampled: the gaps of
one stream share its fate (its server slot, its batch neighbours), so treating them as independent
would make the intervals too narrow.

A change is a **regression** only when both hold:

* its 95 % interval excludes zero on the bad side (slower, or fewer tokens/s): noise does not count;
* its relative change is at least the threshold on that side: a long run makes narrow intervals, and
  a real but negligible slowdown should not fail it.

An **improvement** is the same on the good side. The resampling is seeded per tier, model and metric,
so the same two summaries always give the same verdicts.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from loadtests.collector import SeriesStats
from loadtests.harness_option import HarnessOption
from loadtests.intervals import SCALE, Estimate, bootstrap_percentile, compare_histograms, compare_run_values
from loadtests.metrics import Histogram

__all__ = [
    "COMPARE_OPTIONS",
    "METRICS",
    "BaselineError",
    "CompareSettings",
    "Estimate",
    "Metric",
    "bootstrap_percentile",
    "compare_histograms",
    "compare_summaries",
    "judge",
    "load_baseline",
    "percentile_arg",
    "regression_reason",
    "render_comparison",
    "run_summaries",
    "sample_histograms",
    "threshold_arg",
]


@dataclass(frozen=True)
class Metric:
    key: str  # the histogram's name in the summary and on SeriesStats
    label: str
    unit: str
    higher_is_worse: bool


METRICS: tuple[Metric, ...] = (
    Metric("ttft", "TTFT", "ms", True),
    Metric("itl_stream", "ITL", "ms", True),
    Metric("e2e", "e2e", "ms", True),
    Metric("tps", "tokens/s", "tokens/s", False),
)


@dataclass(frozen=True)
class CompareSettings:
    baseline: str = ""
    #: Percent; a change smaller than this is never a regression.
    threshold_pct: float = 10.0
    #: Which percentile of each metric is compared (50: the median, robust in short runs).
    percentile: float = 50.0
    replicates: int = 20_000
    seed: int = 0
    #: The 95 % holds for the whole table (Bonferroni over its comparisons), not for each cell: a run
    #: compares dozens of tier/model/metric cells, and at 95 % each, one of them would cry wolf in most
    #: runs of an unchanged server.
    familywise: bool = True
    #: Fewer requests than this on either side: no verdict (the interval would mean little).
    min_samples: int = 10


class BaselineError(ValueError):
    """The baseline cannot be compared with: unreadable, not a summary, or without histograms."""


def sample_histograms(stats: SeriesStats) -> dict[str, dict[str, object]]:
    """What a summary keeps of one tier and model so a later run can be compared with it: the requests
    sent after the warm-up (``--compare-warmup``)."""
    return {m.key: stats.steady[m.key].to_dict() for m in METRICS}


def judge(estimate: Estimate, metric: Metric, threshold_pct: float) -> str:
    """regression, improvement, below-threshold (real but small) or insignificant (interval spans 0)."""
    sign = 1 if metric.higher_is_worse else -1
    worse = estimate.diff_lo > 0 if sign > 0 else estimate.diff_hi < 0
    better = estimate.diff_hi < 0 if sign > 0 else estimate.diff_lo > 0
    if not (worse or better):
        return "insignificant"
    rel = estimate.rel
    big = rel is None or abs(rel) * 100 >= threshold_pct  # from exactly 0 any change is large
    if not big:
        return "below-threshold"
    return "regression" if worse else "improvement"


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A summary written by ``--summary-json``; BaselineError when it cannot serve as a baseline."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc}") from exc
    series = data.get("series") if isinstance(data, dict) else None
    if not isinstance(series, list):
        raise BaselineError(f"{path} is not a load summary (no series)")
    if series and not all(isinstance(s, dict) and "histograms" in s for s in series):
        raise BaselineError(f"{path} has no per-request histograms (written by an older harness); rerun it")
    summary: dict[str, Any] = data
    return summary


def _series(summary: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(str(s["tier"]), str(s["model"])): s for s in summary.get("series", [])}


def _r(v: float | None, digits: int = 3) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


def _over(row: Mapping[str, Any]) -> str:
    return f"over {row['runs_old']} vs {row['runs_new']} runs" if row["over"] == "runs" else "over requests"


def _regression_text(row: Mapping[str, Any], percentile: float) -> str:
    return (
        f"regression: {row['tier']} {row['model']} {row['label']} p{percentile:g} "
        f"{row['old']} -> {row['new']} {row['unit']} ({_pct(row['rel'])}, interval "
        f"{_pct(row['rel_lo'])} .. {_pct(row['rel_hi'])} {_over(row)})"
    )


def run_summaries(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The summaries of the runs a ``--repeat`` summary pooled (runs that wrote one), else none."""
    runs = summary.get("runs")
    found = runs.get("summaries", []) if isinstance(runs, Mapping) else []
    return [s for s in found if isinstance(s, Mapping)]


def _run_values(
    runs: list[Mapping[str, Any]], tier: str, model: str, metric: Metric, q: float
) -> list[float]:
    """Each run's percentile of one cell (shown unit); runs without requests in the cell are left out."""
    values = []
    for run in runs:
        histograms = _series(run).get((tier, model), {}).get("histograms", {})
        value = (
            Histogram.from_dict(histograms[metric.key]).percentile(q) if metric.key in histograms else None
        )
        if value is not None:
            values.append(value * SCALE)
    return values


def _estimate(
    old_runs: list[Mapping[str, Any]],
    new_runs: list[Mapping[str, Any]],
    cell: tuple[str, str, Metric, Histogram, Histogram],
    settings: CompareSettings,
    level: float,
) -> tuple[Estimate, dict[str, Any]]:
    """Over runs when both sides hold two runs or more with values in the cell, else over requests."""
    tier, model, metric, old, new = cell
    if len(old_runs) >= 2 and len(new_runs) >= 2:
        q = settings.percentile / 100
        a, b = _run_values(old_runs, tier, model, metric, q), _run_values(new_runs, tier, model, metric, q)
        if len(a) >= 2 and len(b) >= 2 and min(a + b) > 0:
            how = {"over": "runs", "runs_old": len(a), "runs_new": len(b)}
            return compare_run_values(a, b, level=level), how
    seed = [settings.seed, zlib.crc32(f"{tier}/{model}/{metric.key}".encode())]
    est = compare_histograms(
        old, new, percentile=settings.percentile, level=level, replicates=settings.replicates, seed=seed
    )
    return est, {"over": "requests"}


def _pairs(
    old_series: Mapping[tuple[str, str], Mapping[str, Any]],
    new_series: Mapping[tuple[str, str], Mapping[str, Any]],
) -> list[tuple[str, str, Metric, Histogram, Histogram]]:
    """Every tier, model and metric with requests on at least one side of the comparison."""
    pairs = []
    for tier, model in sorted(old_series.keys() & new_series.keys()):
        old_h, new_h = old_series[tier, model]["histograms"], new_series[tier, model]["histograms"]
        for metric in METRICS:
            if metric.key in old_h and metric.key in new_h:
                old, new = Histogram.from_dict(old_h[metric.key]), Histogram.from_dict(new_h[metric.key])
                if old.n or new.n:  # not e.g. the TTFT of an embedding model
                    pairs.append((tier, model, metric, old, new))
    return pairs


def compare_summaries(
    baseline: Mapping[str, Any], current: Mapping[str, Any], settings: CompareSettings
) -> dict[str, Any]:
    """Per tier, model and metric present in both summaries: the estimate and its verdict (JSON-ready)."""
    old_series, new_series = _series(baseline), _series(current)
    old_runs, new_runs = run_summaries(baseline), run_summaries(current)
    pairs = _pairs(old_series, new_series)
    judged = sum(min(old.n, new.n) >= settings.min_samples for *_, old, new in pairs)
    level = 1 - 0.05 / judged if settings.familywise and judged else 0.95
    rows: list[dict[str, Any]] = []
    for tier, model, metric, old, new in pairs:
        row: dict[str, Any] = {
            "tier": tier,
            "model": model,
            "metric": metric.key,
            "label": metric.label,
            "unit": metric.unit,
            "n_old": old.n,
            "n_new": new.n,
        }
        if min(old.n, new.n) < settings.min_samples:
            rows.append({**row, "verdict": "too-few-samples"})
            continue
        est, how = _estimate(old_runs, new_runs, (tier, model, metric, old, new), settings, level)
        rows.append(
            {
                **row,
                **how,
                "old": _r(est.old),
                "new": _r(est.new),
                "diff": _r(est.diff),
                "diff_lo": _r(est.diff_lo),
                "diff_hi": _r(est.diff_hi),
                "rel": _r(est.rel, 4),
                "rel_lo": _r(est.rel_lo, 4),
                "rel_hi": _r(est.rel_hi, 4),
                "verdict": judge(est, metric, settings.threshold_pct),
            }
        )
    return {
        "baseline": settings.baseline,
        "percentile": settings.percentile,
        "threshold_pct": settings.threshold_pct,
        #: Of each cell's interval; with familywise the table as a whole holds 95 %.
        "interval_level": round(level, 6),
        "familywise": settings.familywise,
        "seed": settings.seed,
        #: How many runs each side pooled (1: a single run); with 2 or more on both, intervals are over runs.
        "runs_old": max(1, len(old_runs)),
        "runs_new": max(1, len(new_runs)),
        "rows": rows,
        "regressions": [
            _regression_text(r, settings.percentile) for r in rows if r["verdict"] == "regression"
        ],
        "improvements": sum(r["verdict"] == "improvement" for r in rows),
        "only_in_baseline": [f"{t} {m}" for t, m in sorted(old_series.keys() - new_series.keys())],
        "only_in_run": [f"{t} {m}" for t, m in sorted(new_series.keys() - old_series.keys())],
    }


def regression_reason(comparison: Mapping[str, Any]) -> str | None:
    """One line for the run's verdict naming every regression (the details are in the comparison)."""
    found = [r for r in comparison["rows"] if r["verdict"] == "regression"]
    if not found:
        return None
    cells = ", ".join(f"{r['tier']} {r['model']} {r['label']} {_pct(r['rel'])}" for r in found)
    return f"{len(found)} regression(s) against {comparison['baseline'] or 'the baseline'}: {cells}"


# ------------------------------------------------------------------------------------------ rendering
def _pct(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 100:+.1f} %" if math.isfinite(v) else ("+inf" if v > 0 else "-inf")


_STYLE = {"regression": "bold red", "improvement": "green"}


def _method(comparison: Mapping[str, Any]) -> tuple[str, bool]:
    """How the table's intervals were made, and whether cells over requests need a mark (a mix)."""
    kinds = {r["over"] for r in comparison["rows"] if "over" in r}
    runs = f"over {comparison.get('runs_old', 1)} vs {comparison.get('runs_new', 1)} runs"
    if kinds == {"runs"}:
        return runs, False
    if kinds == {"runs", "requests"}:
        return f"{runs}, * over requests", True
    return "over requests", False


def _cell(row: Mapping[str, Any] | None, mark: bool = False) -> str:
    from rich.markup import escape

    if row is None:
        return "-"
    if row["verdict"] == "too-few-samples":
        return f"n={min(row['n_old'], row['n_new'])}, too few"
    star = "*" if mark and row.get("over") == "requests" else ""
    text = escape(f"{star}{_pct(row['rel'])} [{_pct(row['rel_lo'])} .. {_pct(row['rel_hi'])}]")
    style = _STYLE.get(row["verdict"])
    return f"[{style}]{text} {row['verdict'].upper()}[/]" if style else text


def render_comparison(
    comparison: Mapping[str, Any], file: IO[str] | None = None, console: Any = None
) -> None:
    """One line per tier and model, one cell per metric: relative change [95 % interval]."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(file=file, width=160)
    by_series: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for row in comparison["rows"]:
        by_series.setdefault((row["tier"], row["model"]), {})[row["metric"]] = row
    cells = sum(r["verdict"] != "too-few-samples" for r in comparison["rows"])
    scope = f"95 % over all {cells} cells together" if comparison["familywise"] and cells > 1 else "95 %"
    method, mark = _method(comparison)
    title = (
        f"compared with {comparison['baseline'] or 'the baseline'}: p{comparison['percentile']:g} change "
        f"[interval {method}, {scope}], regression from {comparison['threshold_pct']:g} %"
    )
    table = Table(title=escape(title), title_justify="left")
    table.add_column("tier")
    table.add_column("model")
    for metric in METRICS:
        table.add_column(f"{metric.label} ({metric.unit})", justify="right")
    for (tier, model), rows in sorted(by_series.items()):
        table.add_row(tier, model, *(_cell(rows.get(m.key), mark) for m in METRICS))
    console.print(table)
    for label, names in (
        ("baseline only", comparison["only_in_baseline"]),
        ("run only", comparison["only_in_run"]),
    ):
        if names:
            console.print(escape(f"{label} (not compared): {', '.join(names)}"), highlight=False)
    for text in comparison["regressions"]:
        console.print("[bold red]REGRESSION[/] " + escape(text.removeprefix("regression: ")), highlight=False)


# ------------------------------------------------------------------------------------ option values
def percentile_arg(word: str) -> float:
    """``--compare-percentile``: above 0, at most 100."""
    value = float(word)
    if not 0 < value <= 100:
        raise ValueError(word)
    return value


def threshold_arg(word: str) -> float:
    """``--regression-threshold``: a percentage, 0 or more."""
    value = float(word)
    if not value >= 0:
        raise ValueError(word)
    return value


def warmup_arg(word: str) -> float:
    """``--compare-warmup``: seconds, 0 or more."""
    value = float(word)
    if not 0 <= value < math.inf:
        raise ValueError(word)
    return value


COMPARE_OPTIONS = (
    HarnessOption(
        "compare_warmup",
        parse=warmup_arg,
        default=1.0,
        help="the summary's per-request values for --compare leave out requests sent in the first this "
        "many seconds of the run: the start (users spawning, first requests) is slower by an amount that "
        "varies from run to run (default 1; the summary's figures keep every request)",
    ),
)
