"""``--repeat`` and ``--compare`` on the bundled vLLM reference server: is a rerun of the same setup
called a regression, and how wide are the intervals over runs on a real engine?

Starts ``python -m reference_server`` (real vLLM engines), takes a baseline with ``--repeat N``, then
reruns the same load ``--reruns`` times with ``--repeat N --compare BASELINE`` and prints, per rerun,
the exit code, the regressions called and the largest change of any compared cell with its interval.

    .venv/bin/python tests/bench/repeat_reference.py [--repeat 3] [--seconds 30] [--reruns 2] \
        [-- HARNESS OPTIONS]     # e.g. -- --models 42-logic --weight-chat 0 --weight-embed 0

No assertion: the figures go into the README. The machine may be shared: say so next to them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.server_process import REPO_ROOT, ServerProcess


def _load(url: str, seconds: float, repeat: int, summary: Path, *extra: str) -> int:
    command = [
        sys.executable,
        "-m",
        "loadtests",
        "--host",
        url,
        "-t",
        f"{seconds:g}s",
        "--repeat",
        str(repeat),
        "--weight-batch",
        "0",
        "--weight-pipeline",
        "0",
        "--summary-json",
        str(summary),
        *extra,
    ]
    print("$ " + " ".join(command), flush=True)
    started = time.monotonic()
    code = subprocess.run(command, cwd=REPO_ROOT, timeout=repeat * (seconds + 120)).returncode
    print(f"exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    return code


def _largest_change(summary: dict[str, Any]) -> str:
    rows = [r for r in summary.get("comparison", {}).get("rows", []) if r.get("rel") is not None]
    if not rows:
        return "no compared cells"
    row = max(rows, key=lambda r: abs(r["rel"]))
    width = statistics.median(r["rel_hi"] - r["rel_lo"] for r in rows)
    return (
        f"{row['tier']} {row['model']} {row['label']}: {row['rel']:+.1%} "
        f"(interval {row['rel_lo']:+.1%} .. {row['rel_hi']:+.1%}, {row.get('over', '?')}); "
        f"{len(rows)} cells judged, median interval width {width:.0%}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--reruns", type=int, default=2)
    parser.add_argument("harness", nargs="*", help="more harness options (after --), for every run")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="repeat-reference-"))
    started = time.monotonic()
    with ServerProcess([], startup_timeout=300) as server:
        print(f"reference server (vLLM) ready in {time.monotonic() - started:.0f} s at {server.base_url}")
        baseline = tmp / "baseline.json"
        _load(server.base_url, args.seconds, args.repeat, baseline, *args.harness)
        for i in range(1, args.reruns + 1):
            rerun = tmp / f"rerun{i}.json"
            code = _load(
                server.base_url, args.seconds, args.repeat, rerun, *args.harness, "--compare", str(baseline)
            )
            summary = json.loads(rerun.read_text(encoding="utf-8"))
            called = len(summary.get("comparison", {}).get("regressions", []))
            print(f"rerun {i}: exit {code}, {called} regression(s); largest {_largest_change(summary)}")
    print(f"summaries in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
