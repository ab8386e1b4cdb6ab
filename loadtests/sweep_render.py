"""The capacity sweep's step table on the terminal, with rich (no Locust import)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

__all__ = ["drain_text", "metric_cells", "render_sweep"]


def _f(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return str(v)


def _trio(d: Mapping[str, Any]) -> str:
    return " / ".join(_f(d.get(k)) for k in ("p50", "p90", "p99"))


def metric_cells(s: Mapping[str, Any]) -> list[str]:
    """One step's figures for one tier, as the step table prints them (the terminal and the HTML page):
    sent and admitted rate, 429 and 503 share, TTFT / ITL / e2e p50 / p90 / p99, tokens/s, goodput.
    Numbers only, so the cells need no escaping in either."""
    return [
        _f(s["sent_per_s"]),
        _f(s["admitted_per_s"]),
        f"{s['share_429']:.1%}",
        f"{s['share_503']:.1%}",
        _trio(s["ttft_ms"]),
        _trio(s["itl_ms"]),
        _trio(s["e2e_ms"]),
        _f(s["output_tokens_per_s"]),
        _f(s["goodput_per_s"]),
    ]


def drain_text(sweep: Mapping[str, Any]) -> str | None:
    """How the sweep's drain went (the terminal and the HTML page), or None before one."""
    drain = sweep.get("drain") or {}
    if drain.get("seconds") is None:
        return None
    unfinished = drain.get("unfinished", 0)
    return f"drained in {drain['seconds']:g} s (the requests in flight after the last step finished)" + (
        f"; {unfinished} still unfinished, counted in their steps" if unfinished else ""
    )


def render_sweep(sweep: Mapping[str, Any], file: IO[str] | None = None) -> None:
    """One row per step and tier (plus the step over all tiers), then the highest load meeting the SLOs."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    plan = sweep["plan"]
    unit = "arrivals/s" if plan["mode"] == "rates" else "users"
    console = Console(file=file, width=200)
    table = Table(title=f"capacity sweep: load in {unit} (p50 / p90 / p99)", title_justify="left")
    for col in (
        "step",
        "load",
        "tier",
        "sent/s",
        "admitted/s",
        "429",
        "503",
        "TTFT ms",
        "ITL ms",
        "e2e ms",
        "tokens/s",
        "goodput/s",
        "attained",
        "SLOs",
    ):
        table.add_column(col, justify="left" if col in ("tier", "SLOs") else "right")
    for row in sweep["steps"]:
        verdict = "met" if row["meets_slo"] else "[red]missed[/]: " + escape("; ".join(row["breaches"]))
        for tier, s in [("all", row["all"]), *sorted(row["tiers"].items())]:
            table.add_row(
                str(row["index"] + 1) if tier == "all" else "",
                _f(row["load"]) if tier == "all" else "",
                tier,
                *metric_cells(s),
                "-" if s["attainment"] is None else f"{s['attainment']:.1%}",
                verdict if tier == "all" else "",
            )
    console.print(table)
    best = sweep["highest_load_meeting_slo"]
    console.print(
        "highest load meeting the SLOs: "
        + ("[bold red]none[/]" if best is None else f"[bold]{best:g}[/] {unit}")
    )
    if sweep["stopped_early"]:
        console.print("stopped early: " + escape(sweep["stopped_early"]))
    drained = drain_text(sweep)
    if drained:
        console.print(escape(drained))
