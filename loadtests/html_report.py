"""The self-contained HTML load report: verdict, sweep plots and step table, time series, the summary
tables (no Locust import; no network: plots are inline SVG, styles inline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from loadtests.sweep_render import drain_text, metric_cells

__all__ = ["render_html", "write_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
.pass { color: #080; } .fail { color: #b00; } figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
"""


def _f(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return escape(str(v))


def _trio(d: Mapping[str, Any]) -> str:
    return " / ".join(_f(d.get(k)) for k in ("p50", "p90", "p99"))


def _table(table_id: str, head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(f"<{tag}{' class=l' if i < left else ''}>{v}</{tag}>" for i, v in enumerate(values))

    body = "".join(f"<tr>{cells('td', r)}</tr>" for r in rows)
    head_row = cells("th", [escape(h) for h in head])
    return f'<table id="{table_id}"><thead><tr>{head_row}</tr></thead><tbody>{body}</tbody></table>'


def _step_table(sweep: Mapping[str, Any]) -> str:
    head = [
        "step",
        "load",
        "tier",
        "sent/s",
        "admitted/s",
        "429",
        "503",
        "TTFT p50/p90/p99 ms",
        "ITL p50/p90/p99 ms",
        "e2e p50/p90/p99 ms",
        "tokens/s",
        "goodput/s",
        "attainment",
        "SLOs",
    ]
    rows: list[list[str]] = []
    for r in sweep["steps"]:
        verdict = "met" if r["meets_slo"] else "missed: " + escape("; ".join(r["breaches"]))
        for tier, s in [("all", r["all"]), *sorted(r["tiers"].items())]:
            rows.append(
                [
                    str(r["index"] + 1),
                    _f(r["load"]),
                    escape(tier),
                    *metric_cells(s),
                    _f(s["attainment"]),
                    verdict if tier == "all" else "",
                ]
            )
    return _table("sweep-steps", head, rows, left=3)


def _series_table(summary: Mapping[str, Any]) -> str:
    head = ["tier", "model", "requests", "ok", "429", "503", "fail", "TTFT ms", "ITL ms", "tokens/s"]
    rows = [
        [
            escape(s["tier"]),
            escape(s["model"]),
            str(s["requests"]),
            str(s["ok"]),
            str(s["rate_limited_429"]),
            str(s["unavailable_503"]),
            str(s["failures"]),
            _trio(s["ttft_ms"]),
            _trio(s["itl_ms"]),
            _trio(s["tokens_per_s"]),
        ]
        for s in summary["series"]
    ]
    return _table("series", head, rows, left=2)


def _figures(plots: Sequence[tuple[str, str]]) -> str:
    return "".join(
        f'<figure class="plot"><figcaption>{escape(t)}</figcaption>{svg}</figure>' for t, svg in plots
    )


def render_html(
    summary: Mapping[str, Any], series: Mapping[str, Any] | None, boundaries: Sequence[float] = ()
) -> str:
    """The page for one run's summary (with its ``sweep`` section, if any) and its time series."""
    from loadtests.report_plots import sweep_plots, time_plots  # matplotlib only when a report is asked for

    verdict = summary["verdict"]
    parts = [
        f"<h1>conform42 load report</h1><p class={verdict}><b>{verdict.upper()}</b>: "
        + escape("; ".join(summary["reasons"]) or "no promise violated, every SLO met")
        + "</p>"
    ]
    sweep = summary.get("sweep")
    if sweep:
        best = sweep["highest_load_meeting_slo"]
        parts.append(
            "<h2>Capacity sweep</h2><p>"
            + escape(
                f"highest load meeting the SLOs: {'none' if best is None else f'{best:g}'}"
                + (f"; stopped early: {sweep['stopped_early']}" if sweep["stopped_early"] else "")
                + (f"; {drained}" if (drained := drain_text(sweep)) else "")
            )
            + "</p>"
        )
        parts.append(_figures(sweep_plots(sweep)) + _step_table(sweep))
    if series is not None and series["t"]:
        parts.append("<h2>Over time</h2>" + _figures(time_plots(series, boundaries)))
    parts.append("<h2>Per tier and model (p50 / p90 / p99)</h2>" + _series_table(summary))
    if summary["violations"]:
        rows = [
            [
                escape(v["kind"]),
                escape(v["requirement"] or "-"),
                escape(v["tier"]),
                str(v["count"]),
                escape("; ".join(v["examples"][:3])),
            ]
            for v in summary["violations"]
        ]
        parts.append(
            "<h2>Violations</h2>"
            + _table("violations", ["kind", "requirement", "tier", "count", "examples"], rows, left=3)
        )
    if summary["slo"]:
        rows = [
            [escape(s["name"]), _f(s["threshold"]), _f(s["measured"]), "ok" if s["ok"] else "BREACH"]
            for s in summary["slo"]
        ]
        parts.append("<h2>SLOs</h2>" + _table("slo", ["SLO", "threshold", "measured", ""], rows))
    for notice in summary["notices"]:
        parts.append(f"<p>note: {escape(notice)}</p>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>conform42 load report</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def write_html(
    summary: Mapping[str, Any], series: Mapping[str, Any] | None, path: Path, boundaries: Sequence[float] = ()
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(summary, series, boundaries), encoding="utf-8")
