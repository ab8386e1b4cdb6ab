"""Statistics of a capacity sweep's steps: rates, refusals, latency percentiles, goodput, the saturation
decision and the highest load that met the SLOs (no Locust import).

Per step and tier, from the requests *sent* in the step's measured window (``loadtests.sweep_plan``):

* sent/s: every request; admitted/s: those not refused with 429 or 503;
* unfinished: sent and still in flight when the run ended (after the sweep's drain): counted as sent
  and admitted, as misses in the attainment, not in the latency percentiles (their latency is unknown);
  a step with any does not meet the SLOs (its figures are incomplete);
* dropped: open-loop arrivals the client did not send (``--open-loop-max-in-flight`` reached): not
  sent, so in no other figure; a step with any does not meet the SLOs (its load was not offered);
* 429 / 503 share: of the requests sent;
* TTFT / ITL / end-to-end percentiles: of the successful requests (ITL: a stream's mean per-token ITL);
* output tokens/s: the successful requests' output tokens over the window;
* goodput/s: successful requests that met every per-request SLO given (all successful ones when none
  is given; TTFT and ITL thresholds apply to streams); attainment: goodput over the admitted
  requests (a 429 is the tier limit at work, not a miss; a 503 or a failure is a miss).

A step meets the SLOs when its attainment reaches the target (with per-request SLOs), its TTFT / ITL /
end-to-end p95 are within ``--slo-*-p95`` and its failure rate within ``--slo-error-rate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loadtests.report import Thresholds
from loadtests.request_log import OUTCOMES, RequestRecord
from loadtests.sweep_plan import GoodputSlo, StepWindow, SweepPlan

__all__ = [
    "GOODPUT_FLOOR",
    "GROWTH_MIN",
    "highest_meeting",
    "percentile",
    "saturation",
    "step_rows",
    "sweep_summary",
    "window_stats",
]

#: Saturated when goodput falls below this share of the best step's.
GOODPUT_FLOOR = 0.5
#: Saturated when a step with at least LOAD_GROWTH times the load admits less than GROWTH_MIN times as much.
GROWTH_MIN = 1.05
LOAD_GROWTH = 1.2
_QS = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _pcts(values: list[float]) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    for name, q in _QS:
        v = percentile(values, q)
        out[name] = None if v is None else round(v, 3)
    out["n"] = len(values)
    return out


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def window_stats(records: Sequence[RequestRecord], seconds: float, slo: GoodputSlo) -> dict[str, Any]:
    """The figures of the requests sent in one window ``seconds`` long (and the arrivals dropped)."""
    count = {o: 0 for o in OUTCOMES}
    for r in records:
        count[r.outcome] = count.get(r.outcome, 0) + 1
    sent = len(records) - count["dropped"]
    ok = [r for r in records if r.outcome == "ok"]
    good = sum(1 for r in ok if slo.met(r.ttft_ms, r.itl_ms, r.e2e_ms, r.kind == "stream"))
    admitted = sent - count["429"] - count["503"]
    judged = sent - count["429"]
    return {
        "sent": sent,
        "sent_per_s": _rate(sent, seconds),
        "admitted_per_s": _rate(admitted, seconds),
        "ok": count["ok"],
        "rate_limited_429": count["429"],
        "unavailable_503": count["503"],
        "failures": count["fail"],
        "unfinished": count["unfinished"],
        "dropped": count["dropped"],
        "share_429": round(count["429"] / sent, 4) if sent else 0.0,
        "share_503": round(count["503"] / sent, 4) if sent else 0.0,
        "error_rate": round(count["fail"] / sent, 4) if sent else 0.0,
        "ttft_ms": _pcts([r.ttft_ms for r in ok if r.ttft_ms is not None]),
        "itl_ms": _pcts([r.itl_ms for r in ok if r.itl_ms is not None]),
        "e2e_ms": _pcts([r.e2e_ms for r in ok if r.e2e_ms is not None]),
        "output_tokens_per_s": _rate(sum(r.tokens for r in ok), seconds),
        "goodput_per_s": _rate(good, seconds),
        "attainment": round(good / judged, 4) if judged else None,
    }


def _breaches(stats: Mapping[str, Any], slo: GoodputSlo, thresholds: Thresholds) -> list[str]:
    out: list[str] = []
    if stats["dropped"]:
        out.append(f"{stats['dropped']} arrival(s) dropped by the client")
    if not stats["sent"]:
        return [*out, "no requests"]
    if stats["unfinished"]:
        out.append(f"{stats['unfinished']} request(s) unfinished (the run or their user ended first)")
    for key, limit in (
        ("ttft_ms", thresholds.ttft_p95_ms),
        ("itl_ms", thresholds.itl_p95_ms),
        ("e2e_ms", thresholds.e2e_p95_ms),
    ):
        measured = stats[key]["p95"]
        if limit is not None and measured is not None and measured > limit:
            out.append(f"{key.removesuffix('_ms')} p95 {measured:g} ms > {limit:g}")
    if thresholds.error_rate is not None and stats["error_rate"] > thresholds.error_rate:
        out.append(f"error rate {stats['error_rate']:g} > {thresholds.error_rate:g}")
    attained = stats["attainment"]
    if slo.any and (attained is None or attained < slo.attainment):
        out.append(f"attainment {attained} < {slo.attainment:g}")
    return out


def step_rows(
    records: Iterable[RequestRecord], windows: Sequence[StepWindow], slo: GoodputSlo, thresholds: Thresholds
) -> list[dict[str, Any]]:
    """One row per step: the figures over all tiers and per tier, and whether the step met the SLOs."""
    ordered = sorted(records, key=lambda r: r.start)
    rows: list[dict[str, Any]] = []
    for w in windows:
        inside = [r for r in ordered if w.measured_from <= r.start < w.end]
        tiers = sorted({r.tier for r in inside})
        total = window_stats(inside, w.seconds, slo)
        breaches = _breaches(total, slo, thresholds)
        rows.append(
            {
                "index": w.index,
                "load": w.load,
                "seconds": round(w.seconds, 3),
                "all": total,
                "tiers": {t: window_stats([r for r in inside if r.tier == t], w.seconds, slo) for t in tiers},
                "meets_slo": not breaches,
                "breaches": breaches,
            }
        )
    return rows


def saturation(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the last step shows the target saturated, or None: goodput below half its best, or a clearly
    higher load admitted at no higher rate than the best step before it."""
    if len(rows) < 2:
        return None
    last, earlier = rows[-1], rows[:-1]
    best_good = max(rows, key=lambda r: r["all"]["goodput_per_s"])
    good = last["all"]["goodput_per_s"]
    if best_good is not last and good < GOODPUT_FLOOR * best_good["all"]["goodput_per_s"]:
        return (
            f"goodput {good:g}/s at load {last['load']:g} is below half the best "
            f"({best_good['all']['goodput_per_s']:g}/s at load {best_good['load']:g})"
        )
    best = max(earlier, key=lambda r: r["all"]["admitted_per_s"])
    admitted = last["all"]["admitted_per_s"]
    if last["load"] >= LOAD_GROWTH * best["load"] and admitted < GROWTH_MIN * best["all"]["admitted_per_s"]:
        return (
            f"admitted rate stopped growing: {admitted:g}/s at load {last['load']:g}, "
            f"{best['all']['admitted_per_s']:g}/s at load {best['load']:g}"
        )
    return None


def highest_meeting(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The step with the highest load among those that met the SLOs."""
    meeting = [r for r in rows if r["meets_slo"]]
    return max(meeting, key=lambda r: r["load"]) if meeting else None


def sweep_summary(
    plan: SweepPlan,
    rows: list[dict[str, Any]],
    slo: GoodputSlo,
    stopped_early: str | None,
    drain: Mapping[str, Any],
) -> dict[str, Any]:
    """The sweep section of the JSON summary."""
    best = highest_meeting(rows)
    return {
        "plan": plan.to_dict(),
        "slo": slo.to_dict(),
        "steps": rows,
        "highest_load_meeting_slo": None if best is None else best["load"],
        "highest_step_meeting_slo": None if best is None else best["index"],
        "stopped_early": stopped_early,
        #: how long the drain after the last step took (seconds) and the requests left unfinished
        "drain": dict(drain),
    }
