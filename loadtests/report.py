"""The end-of-run summary: per tier and model figures, violations, SLO verdict and exit code.

Pure (no Locust import): ``summarise`` turns a merged :class:`~loadtests.collector.Collector` and the
thresholds into one JSON-ready dict; ``render`` prints it with rich. Percentiles here come from the
harness's own histograms (exact below 1 ms, three significant digits above), not from Locust's
rounded buckets, which keep only two significant digits and whole milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from loadtests.collector import Collector, SeriesStats
from loadtests.compare import regression_reason, render_comparison, sample_histograms
from loadtests.metrics import Histogram

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "Thresholds",
    "add_comparison",
    "render",
    "series_row",
    "series_totals",
    "summarise",
    "write_json",
]

EXIT_OK, EXIT_FAILED = 0, 1
_QS = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))


@dataclass(frozen=True)
class Thresholds:
    """SLOs that set the exit code; None disables one. Milliseconds, except the ratios."""

    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    e2e_p95_ms: float | None = None
    error_rate: float | None = 0.01
    max_dispatch_delay_ms: float = 10.0
    fail_on_saturation: bool = False


def _ms(h: Histogram, scale: float = 1e-3) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, q in _QS:
        v = h.percentile(q)
        out[name] = None if v is None else round(v * scale, 3)
    mean = h.mean
    out["mean"] = None if mean is None else round(mean * scale, 3)
    out["n"] = h.n
    return out


def series_row(tier: str, model: str, s: SeriesStats) -> dict[str, Any]:
    """The summary's figures of one tier and model."""
    return {
        "tier": tier,
        "model": model,
        "requests": s.requests,
        "ok": s.ok,
        "failures": s.failures,
        "rate_limited_429": s.rate_limited,
        "unavailable_503": s.unavailable,
        "rate_429": round(s.rate_limited / s.requests, 4) if s.requests else 0.0,
        "output_tokens": s.tokens,
        "usage_mismatch": s.usage_mismatch,
        "usage_missing": s.usage_missing,
        "ttft_ms": _ms(s.ttft),
        "itl_ms": _ms(s.itl),
        "e2e_ms": _ms(s.e2e),
        "tokens_per_s": _ms(s.tps),  # stored as milli-tokens/s, so the same scale gives tokens/s
        # Successful chats and streams: the server's usage, and the cap asked (loadtests.workload).
        "prompt_tokens": _ms(s.prompt_tokens, 1),
        "completion_tokens": _ms(s.completion_tokens, 1),
        "max_tokens_asked": _ms(s.asked_tokens, 1),
        "short_of_max_tokens": s.short_answers,
        # Per-request values after the warm-up, so a later run can be compared with this one (--compare).
        "histograms": sample_histograms(s),
        # All that the figures above come from, mergeable, so that runs can be pooled (--repeat).
        "pool": s.to_dict(),
    }


def series_totals(
    series: Mapping[tuple[str, str], SeriesStats],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows per tier and model (sorted) and the totals over them."""
    rows = []
    total_ttft, total_itl, total_e2e = Histogram(), Histogram(), Histogram()
    requests = failures = limited = 0
    for (tier, model), s in sorted(series.items()):
        requests += s.requests
        failures += s.failures
        limited += s.rate_limited
        total_ttft.merge(s.ttft)
        total_itl.merge(s.itl)
        total_e2e.merge(s.e2e)
        rows.append(series_row(tier, model, s))
    totals = {
        "requests": requests,
        "failures": failures,
        "rate_limited_429": limited,
        "ttft_ms": _ms(total_ttft),
        "itl_ms": _ms(total_itl),
        "e2e_ms": _ms(total_e2e),
    }
    return rows, totals


def summarise(
    collector: Collector, thresholds: Thresholds, *, profile: str = "42ai", harness_errors: Sequence[str] = ()
) -> dict[str, Any]:
    """``harness_errors``: uncaught exceptions in the users; the figures cannot be trusted then."""
    series, totals = series_totals(collector.series)
    requests, failures = totals["requests"], totals["failures"]
    violations = collector.all_violations()
    dispatch = _ms(collector.dispatch_delay)
    dispatch_p99 = dispatch["p99"]
    saturated = bool(collector.dropped_arrivals) or (
        dispatch_p99 is not None and dispatch_p99 > thresholds.max_dispatch_delay_ms
    )

    slo: list[dict[str, Any]] = []

    def check(name: str, limit: float | None, measured: float | None) -> None:
        if limit is None:
            return
        ok = measured is None or measured <= limit
        slo.append({"name": name, "threshold": limit, "measured": measured, "ok": ok})

    check("ttft_p95_ms", thresholds.ttft_p95_ms, totals["ttft_ms"]["p95"])
    check("itl_p95_ms", thresholds.itl_p95_ms, totals["itl_ms"]["p95"])
    check("e2e_p95_ms", thresholds.e2e_p95_ms, totals["e2e_ms"]["p95"])
    check("error_rate", thresholds.error_rate, round(failures / requests, 4) if requests else 0.0)

    reasons = [
        f"{v['count']} x {v['kind']}"
        + (f" ({v['requirement']})" if v["requirement"] else "")
        + f" [{v['tier']}]"
        for v in violations
    ]
    reasons += [f"SLO {s['name']}: {s['measured']} > {s['threshold']}" for s in slo if not s["ok"]]
    if saturated and thresholds.fail_on_saturation:
        reasons.append("the load generator was saturated (open-loop dispatch delay)")
    if requests == 0:
        reasons.append("no requests were made")
    reasons += [f"harness error: {e}" for e in harness_errors]
    code = EXIT_FAILED if reasons else EXIT_OK
    return {
        "profile": profile,
        "verdict": "fail" if code else "pass",
        "exit_code": code,
        "reasons": reasons,
        "series": series,
        "totals": totals,
        "violations": violations,
        "slo": slo,
        "open_loop": {
            "arrivals": collector.arrivals,
            "dropped_arrivals": collector.dropped_arrivals,
            "dispatch_delay_ms": dispatch,
            "e2e_from_intended_ms": _ms(collector.e2e_from_intended),
            "saturated": saturated,
        },
        "tokens": {"exchanges": collector.token_exchanges, "retries_after_401": collector.token_retries_401},
        "prompt_tokens_by_turn": {
            str(turn): _ms(h, 1) for turn, h in sorted(collector.turn_prompt_tokens.items())
        },
        "notices": sorted(collector.notices),
        "processes": collector.processes,
    }


def add_comparison(summary: dict[str, Any], comparison: Mapping[str, Any]) -> None:
    """Attach a comparison with a baseline (loadtests.compare); a regression fails the run."""
    summary["comparison"] = comparison
    reason = regression_reason(comparison)
    if reason:
        summary["reasons"] = [*summary["reasons"], reason]
        summary["verdict"], summary["exit_code"] = "fail", EXIT_FAILED


def write_json(summary: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _f(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    return str(v)


def _trio(d: Mapping[str, Any]) -> str:
    return " / ".join(_f(d.get(k)) for k in ("p50", "p90", "p99"))


def _tokens(d: Mapping[str, Any]) -> str:
    return " / ".join("-" if d.get(k) is None else f"{d[k]:.0f}" for k in ("p50", "p90", "p99"))


_SUMMARY_COLUMNS = (
    *("requests", "ok", "429", "429 rate", "503", "fail"),
    *("TTFT ms", "ITL ms", "tokens/s", "usage != chunks"),
)


def _series_table(title: str, *columns: str) -> Any:
    """A rich table with a row per tier and model: names left, figures right."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("tier", "model", *columns):
        table.add_column(col, justify="left" if col in ("tier", "model") else "right")
    return table


def _token_table(summary: Mapping[str, Any]) -> Any:
    """Tokens per successful chat or stream: prompt and answer (the server's usage), max_tokens asked."""
    table = _series_table(
        "tokens per request (p50 / p90 / p99)", "prompt", "output", "max_tokens asked", "answers short of it"
    )
    for row in summary["series"]:
        if row.get("completion_tokens", {}).get("n"):
            table.add_row(
                row["tier"],
                row["model"],
                _tokens(row["prompt_tokens"]),
                _tokens(row["completion_tokens"]),
                _tokens(row["max_tokens_asked"]),
                str(row["short_of_max_tokens"]),
            )
    return table if table.row_count else None


def render(summary: Mapping[str, Any], file: IO[str] | None = None) -> None:
    """The summary table, violations and verdict, with rich (plain text when not a terminal)."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=file, width=160)
    runs = summary.get("runs")
    pooled = f", {len(runs['exit_codes'])} runs pooled" if runs else ""
    table = _series_table(f"conform42 load summary{pooled} (p50 / p90 / p99)", *_SUMMARY_COLUMNS)
    for row in summary["series"]:
        table.add_row(
            row["tier"],
            row["model"],
            str(row["requests"]),
            str(row["ok"]),
            str(row["rate_limited_429"]),
            f"{row['rate_429']:.1%}",
            str(row["unavailable_503"]),
            str(row["failures"]),
            _trio(row["ttft_ms"]),
            _trio(row["itl_ms"]),
            _trio(row["tokens_per_s"]),
            str(row["usage_mismatch"]),
        )
    console.print(table)
    tokens = _token_table(summary)
    if tokens is not None:
        console.print(tokens)
    by_turn = summary.get("prompt_tokens_by_turn", {})
    if len(by_turn) > 1:
        turns = (f"turn {turn}: {_tokens(h)} (n={h['n']})" for turn, h in by_turn.items())
        console.print("prompt tokens by turn (p50 / p90 / p99): " + "; ".join(turns))
    ol = summary["open_loop"]
    if ol["arrivals"]:
        d = ol["dispatch_delay_ms"]
        console.print(
            f"open loop: {ol['arrivals']} arrivals, {ol['dropped_arrivals']} dropped, dispatch delay "
            f"p50 {_f(d['p50'])} / p99 {_f(d['p99'])} ms"
            + (
                "  [bold red]CLIENT SATURATED: latencies understate the server's[/]"
                if ol["saturated"]
                else ""
            )
        )
    tok = summary["tokens"]
    console.print(
        f"task tokens: {tok['exchanges']} exchanges, {tok['retries_after_401']} retried after a 401"
    )
    for notice in summary["notices"]:
        console.print(f"note: {escape(notice)}")
    for v in summary["violations"]:
        req = f" {v['requirement']}" if v["requirement"] else ""
        req += f" (run {v['run']})" if "run" in v else ""
        console.print(
            f"[bold red]VIOLATION{req}[/] "
            + escape(f"[{v['kind']}] {v['tier']}: {v['count']} x; " + "; ".join(v["examples"][:3])),
            highlight=False,
        )
    for s in summary["slo"]:
        mark = "ok" if s["ok"] else "[bold red]BREACH[/]"
        worst = f" (worst of the runs: run {s['worst_run']})" if "worst_run" in s else ""
        console.print(f"SLO {s['name']} <= {s['threshold']}: measured {_f(s['measured'])}{worst} {mark}")
    if summary.get("comparison"):
        render_comparison(summary["comparison"], console=console)
    verdict = summary["verdict"].upper()
    colour = "green" if summary["exit_code"] == 0 else "red"
    detail = "; ".join(summary["reasons"]) if summary["reasons"] else "no promise violated, every SLO met"
    console.print(f"[bold {colour}]{verdict}[/]: " + escape(detail), highlight=False)
