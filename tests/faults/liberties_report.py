"""The planted liberties in ``python -m tests.faults.prove``: selection, listing, the run and the scores
printed beside the faults' (the prove module imports this lazily; this module imports the proof)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.faults.liberties import LIBERTIES, Liberty, get
from tests.faults.liberties_prove import LibertyResult, precision, prove_liberties, render_liberties
from tests.faults.prove import Score

__all__ = ["markdown_table", "plain_list", "render", "run", "score_line", "selected", "summary"]


def selected(names: str | None) -> list[Liberty]:
    """``all`` or a comma-separated list (KeyError for an unknown name); none when not asked for."""
    if not names:
        return []
    if names.strip() == "all":
        return list(LIBERTIES.values())
    return [get(name.strip()) for name in names.split(",") if name.strip()]


def _path(lib: Liberty) -> str:
    parts: list[str] = [lib.profile]
    if lib.intermediary:
        parts.append(f"via {lib.intermediary}")
    if lib.busy:
        parts.append("busy machine")
    if lib.token_delay_s is not None:
        parts.append(f"{lib.token_delay_s:g} s/token")
    return ", ".join(parts)


def plain_list(liberties: Sequence[Liberty] = ()) -> str:
    chosen = liberties or list(LIBERTIES.values())
    return "\n".join(f"{lib.name:<28} {lib.area:<11} {_path(lib):<36} {lib.description}" for lib in chosen)


def markdown_table() -> str:
    """The catalogue as the README shows it: name, area, what, the words that allow it."""
    rows = ["| liberty | area | what the server does | allowed by |", "|---|---|---|---|"]
    for lib in LIBERTIES.values():
        what = lib.description + (f" ({_path(lib)})" if _path(lib) != "42ai" else "")
        if lib.accepts:
            what += f"; the run accepts a Skip of {', '.join(lib.accepts)} (--accept-skip)"
        rows.append(f"| `{lib.name}` | {lib.area} | {_cell(what)} | {_cell(lib.allowed_by)} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run(liberties: Sequence[Liberty], work_dir: Path, args: argparse.Namespace) -> list[LibertyResult]:
    def progress(result: LibertyResult) -> None:
        musts = ", ".join(result.must_failures)
        print(
            f"{result.status:<10} liberty {result.liberty} ({result.run.duration_s:.0f} s) {musts}",
            flush=True,
        )

    return prove_liberties(
        liberties,
        work_dir,
        jobs=args.jobs,
        filtered=args.requirements_only,
        timeout_s=args.timeout,
        progress=progress,
        token_delay_s=args.sim_token_delay,
    )


def summary(results: Sequence[LibertyResult]) -> dict[str, Any]:
    score = precision(results)
    return {
        "precision": {"passed": score.caught, "planted": score.planted, "ratio": score.ratio},
        "liberties": [r.to_dict() for r in results],
        "failed": [r.liberty for r in results if not r.passed],
    }


def render(results: Sequence[LibertyResult]) -> str:
    return render_liberties(results)


def score_line(recall: Score | None, results: Sequence[LibertyResult]) -> str:
    """``faults caught 77/77 (100 %) | liberties passed 22/22 (100 %)``."""
    passed = precision(results)
    right = f"liberties passed {passed.caught}/{passed.planted} ({passed.ratio * 100:.0f} %)"
    if recall is None:
        return right
    return f"faults caught {recall.caught}/{recall.planted} ({recall.ratio * 100:.0f} %) | {right}"
