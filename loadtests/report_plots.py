"""The HTML report's plots as inline SVG strings, drawn with matplotlib (no Locust import).

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: no global state and no GUI
backend, so it works headless and in any process. Text is stored as paths (matplotlib's SVG default),
so the page needs no fonts and no network.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["sweep_plots", "time_plots"]

_PCTS = (("p50", "-"), ("p90", ":"), ("p99", "--"))


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _axes(title: str, xlabel: str, ylabel: str, n: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(5.2 * n, 3.4))
    axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    del title  # the page's caption names the plot
    return fig, axes


def _load_label(plan: Mapping[str, Any]) -> str:
    return "offered load (arrivals/s)" if plan["mode"] == "rates" else "offered load (closed-loop users)"


def sweep_plots(sweep: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(title, svg) of: latency percentiles per tier, goodput with the SLO, 429/503 share; vs load."""
    rows, plan, slo = sweep["steps"], sweep["plan"], sweep["slo"]
    loads = [r["load"] for r in rows]
    xlabel = _load_label(plan)
    tiers = sorted({t for r in rows for t in r["tiers"]})
    out: list[tuple[str, str]] = []

    fig, axes = _axes("Latency percentiles vs offered load", xlabel, "ms", 3)
    for ax, (key, label) in zip(
        axes, (("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("e2e_ms", "end-to-end")), strict=True
    ):
        ax.set_title(label)
        for i, tier in enumerate(tiers):
            colour = f"C{i}"
            for pct, style in _PCTS:
                ys = [r["tiers"].get(tier, {}).get(key, {}).get(pct) for r in rows]
                ax.plot(
                    loads,
                    [float("nan") if y is None else y for y in ys],
                    style,
                    color=colour,
                    marker=".",
                    label=f"{tier} {pct}",
                )
        limit = slo.get(key)
        if limit is not None:
            ax.axhline(limit, color="red", linewidth=1, label="per-request SLO")
    axes[0].legend(fontsize=7)
    out.append(
        ("Latency percentiles vs offered load (per tier; p50 solid, p90 dotted, p99 dashed)", _svg(fig))
    )

    fig, (ax,) = _axes("Goodput vs offered load", xlabel, "requests/s")
    ax.plot(loads, [r["all"]["sent_per_s"] for r in rows], ":", marker=".", label="sent/s")
    ax.plot(loads, [r["all"]["admitted_per_s"] for r in rows], "--", marker=".", label="admitted/s")
    ax.plot(loads, [r["all"]["goodput_per_s"] for r in rows], "-", marker="o", label="goodput/s")
    best = sweep.get("highest_load_meeting_slo")
    if best is not None:
        ax.axvline(best, color="green", linewidth=1, label=f"highest load meeting the SLOs ({best:g})")
    twin = ax.twinx()
    twin.plot(
        loads, [r["all"]["attainment"] or 0.0 for r in rows], color="grey", marker="x", label="attainment"
    )
    twin.axhline(slo["attainment"], color="red", linewidth=1, label=f"SLO attainment {slo['attainment']:g}")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("share of admitted requests meeting the SLOs")
    handles = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7, loc="upper left")
    out.append(("Goodput vs offered load, with the SLO", _svg(fig)))

    fig, (ax,) = _axes("429 / 503 share vs offered load", xlabel, "share of requests sent")
    for i, tier in enumerate(tiers):
        for key, style in (("share_429", "-"), ("share_503", "--")):
            ax.plot(
                loads,
                [r["tiers"].get(tier, {}).get(key, 0.0) for r in rows],
                style,
                color=f"C{i}",
                marker=".",
                label=f"{tier} {key.removeprefix('share_')}",
            )
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    out.append(("429 / 503 share vs offered load (per tier)", _svg(fig)))
    return out


def _steps(ax: Axes, boundaries: Sequence[float]) -> None:
    for x in boundaries:
        ax.axvline(x, color="grey", linewidth=0.6, alpha=0.6)


def time_plots(series: Mapping[str, Any], boundaries: Sequence[float] = ()) -> list[tuple[str, str]]:
    """(title, svg) of: throughput, TTFT p50/p99, refusals and errors, in-flight per key; over time."""
    t = series["t"]
    xlabel = "seconds since the start"
    out: list[tuple[str, str]] = []

    fig, (ax,) = _axes("Throughput", xlabel, "requests/s")
    ax.plot(t, series["sent_per_s"], ":", label="sent/s")
    ax.plot(t, series["ok_per_s"], "-", label="ok/s")
    twin = ax.twinx()
    twin.plot(t, series["tokens_per_s"], color="C2", label="output tokens/s")
    twin.set_ylabel("output tokens/s")
    _steps(ax, boundaries)
    h1, h2 = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
    ax.legend(h1[0] + h2[0], h1[1] + h2[1], fontsize=7, loc="upper left")
    out.append(("Throughput over time", _svg(fig)))

    fig, (ax,) = _axes("TTFT", xlabel, "ms")
    for key, label in (("ttft_p50_ms", "TTFT p50"), ("ttft_p99_ms", "TTFT p99")):
        ax.plot(
            t, [float("nan") if v is None else v for v in series[key]], marker=".", markersize=3, label=label
        )
    _steps(ax, boundaries)
    ax.legend(fontsize=7)
    out.append(("TTFT p50 / p99 over time", _svg(fig)))

    fig, (ax,) = _axes("Refusals and errors", xlabel, "per second")
    for key, label in (("r429_per_s", "429"), ("r503_per_s", "503"), ("failures_per_s", "failures")):
        ax.plot(t, series[key], label=label)
    _steps(ax, boundaries)
    ax.legend(fontsize=7)
    out.append(("429 / 503 / failures over time", _svg(fig)))

    keys = series["in_flight"]
    if keys:
        fig, (ax,) = _axes("In flight per key", xlabel, "successful requests in flight (peak)")
        for i, (key_id, k) in enumerate(keys.items()):
            ax.step(t, k["peak"], where="post", color=f"C{i}", label=f"{k['tier']} {key_id}")
            if k["limit"] is not None:
                ax.axhline(k["limit"], color=f"C{i}", linestyle="--", linewidth=1, label=f"{k['tier']} limit")
        _steps(ax, boundaries)
        ax.legend(fontsize=7)
        out.append(("In flight per key against its tier limit", _svg(fig)))
    return out
