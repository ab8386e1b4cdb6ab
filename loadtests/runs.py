"""One summary for the same load run several times (``--repeat N``), without Locust.

The combined summary is a summary like a single run's: its ``series`` and ``totals`` pool the
runs' requests (each row's ``pool``: counters added, histograms merged exactly), so it can serve as
the baseline of a single run's ``--compare`` (an interval over requests). It also keeps every run's
own summary under ``runs``, so a comparison of two such summaries can put its interval over runs
(``loadtests.compare``), which is what sees the drift from one run to the next.

Promises and SLOs are judged per run, where the requests they concern were in flight together, never
over the pool: a violation or a breached SLO in any run fails the combined summary, named by run.
Prompt tokens by turn are only in each run's summary (a summary keeps their percentiles, which do not
pool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.collector import SeriesStats
from loadtests.harness_option import HarnessOption
from loadtests.report import EXIT_FAILED, EXIT_OK, series_totals

__all__ = ["EXIT_USAGE", "REPEAT_OPTIONS", "RunResult", "combine", "repeat_arg", "worst_exit"]

#: Locust's and the harness's exit code for a setup problem (bad option, unusable baseline).
EXIT_USAGE = 2


def repeat_arg(word: str) -> int:
    """``--repeat``: a whole number of runs, 1 or more."""
    value = int(word)
    if value < 1:
        raise ValueError(word)
    return value


REPEAT_OPTIONS = (
    HarnessOption(
        "repeat",
        parse=repeat_arg,
        default=1,
        help="run the same load N times (python -m loadtests / conform42 load only), one process after "
        "another, and write one summary pooling them with each run's own; with --compare against a "
        "summary of repeated runs, the interval is over runs, so the run-to-run drift is in it (default 1)",
    ),
)


@dataclass(frozen=True)
class RunResult:
    """One run of a repeat: its process's exit code and the summary it wrote (None: it wrote none)."""

    index: int  # from 1
    exit_code: int
    summary: Mapping[str, Any] | None
    seconds: float = 0.0
    log: str = ""


def worst_exit(codes: Sequence[int]) -> int:
    """0 when every run passed; 2 when a run met a setup problem (as a single run would report it);
    otherwise 1, also for a run that crashed or was killed (an exit code of its own, or a signal)."""
    if all(code == EXIT_OK for code in codes):
        return EXIT_OK
    return EXIT_USAGE if EXIT_USAGE in codes else EXIT_FAILED


def _pool(summaries: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], SeriesStats]:
    pooled: dict[tuple[str, str], SeriesStats] = {}
    for summary in summaries:
        for row in summary.get("series", []):
            pooled.setdefault((str(row["tier"]), str(row["model"])), SeriesStats()).merge_dict(row["pool"])
    return pooled


def _run_reasons(result: RunResult) -> list[str]:
    where = f"; its output: {result.log}" if result.log else ""
    if result.summary is None:
        return [f"run {result.index}: exited {result.exit_code} without a summary{where}"]
    reasons = [f"run {result.index}: {reason}" for reason in result.summary.get("reasons", [])]
    if result.exit_code != EXIT_OK and not reasons:
        reasons.append(f"run {result.index}: exited {result.exit_code}{where}")
    return reasons


def _worst_slo(indexed: Sequence[tuple[int, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per SLO the worst run: a breach before a pass, then the highest measurement."""
    worst: dict[str, dict[str, Any]] = {}
    for index, summary in indexed:
        for slo in summary.get("slo", []):
            measured = slo.get("measured")
            rank = (not slo["ok"], -1.0 if measured is None else float(measured))
            held = worst.get(slo["name"])
            if held is None or rank > held["rank"]:
                worst[slo["name"]] = {**slo, "worst_run": index, "rank": rank}
    return [{k: v for k, v in slo.items() if k != "rank"} for slo in worst.values()]


def _open_loop(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Arrivals add up; the dispatch delays are the worst run's (percentiles of runs do not add)."""
    loops = [s["open_loop"] for s in summaries if "open_loop" in s]
    if not loops:
        return {"arrivals": 0, "dropped_arrivals": 0, "saturated": False}

    def p99(loop: Mapping[str, Any]) -> float:
        value = loop.get("dispatch_delay_ms", {}).get("p99")
        return -1.0 if value is None else float(value)

    worst = max(loops, key=p99)
    return {
        **worst,
        "arrivals": sum(int(loop["arrivals"]) for loop in loops),
        "dropped_arrivals": sum(int(loop["dropped_arrivals"]) for loop in loops),
        "saturated": any(loop["saturated"] for loop in loops),
    }


def combine(results: Sequence[RunResult], requested: int) -> dict[str, Any]:
    """The summary of ``requested`` runs of which ``results`` ran (JSON-ready, ``render``-able)."""
    indexed = [(r.index, r.summary) for r in results if r.summary is not None]
    summaries = [summary for _, summary in indexed]
    rows, totals = series_totals(_pool(summaries))
    reasons = [reason for result in results for reason in _run_reasons(result)]
    codes = [r.exit_code for r in results]
    if len(results) < requested:
        reasons.append(f"only {len(results)} of {requested} runs ran")
        codes.append(EXIT_FAILED)
    code = worst_exit(codes) if codes else EXIT_FAILED
    tokens = [s.get("tokens", {}) for s in summaries]
    return {
        "profile": summaries[0].get("profile", "") if summaries else "",
        "verdict": "fail" if code else "pass",
        "exit_code": code,
        "reasons": reasons,
        "series": rows,
        "totals": totals,
        "violations": [{**v, "run": index} for index, s in indexed for v in s.get("violations", [])],
        "slo": _worst_slo(indexed),
        "open_loop": _open_loop(summaries),
        "tokens": {
            "exchanges": sum(int(t.get("exchanges", 0)) for t in tokens),
            "retries_after_401": sum(int(t.get("retries_after_401", 0)) for t in tokens),
        },
        "notices": sorted({notice for s in summaries for notice in s.get("notices", [])}),
        "processes": max((int(s.get("processes", 1)) for s in summaries), default=0),
        "runs": {
            "requested": requested,
            "exit_codes": [r.exit_code for r in results],
            "seconds": [round(r.seconds, 3) for r in results],
            "summaries": [r.summary for r in results],
        },
    }
