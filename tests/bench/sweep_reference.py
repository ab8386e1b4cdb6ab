"""A capacity sweep on the bundled vLLM reference server, with the HTML report and its screenshot.

Starts ``python -m reference_server`` (real vLLM engines, about 70 s), runs ``python -m loadtests
--sweep-rates ...`` against its internal key (open loop, no closed-loop users) with TTFT p95 <= 1 s as
the SLO, writes ``docs/sweep/sweep.json`` and ``docs/sweep/sweep.html`` and takes a screenshot of the
page with headless Chromium (``docs/sweep.png``). The step table and the highest load meeting the SLO
are printed by the harness itself.

    .venv/bin/python tests/bench/sweep_reference.py [--rates 1,2,4,8,12,16] [--step-seconds 30]

No assertion: the figures go into the README. The machine may be shared: say so next to them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.server_process import REPO_ROOT, ServerProcess

OUT = REPO_ROOT / "docs" / "sweep"


def _screenshot(html: Path, png: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium: no screenshot (apt-get install chromium)")
        return
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2200",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    print(f"screenshot: {png}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="1,2,4,8,12,16", help="open-loop arrivals per s, one step each")
    parser.add_argument("--step-seconds", type=float, default=30.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--slo-ttft-p95", type=float, default=1000.0, help="ms")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with ServerProcess([], startup_timeout=300) as server:
        print(f"reference server (vLLM) ready in {time.monotonic() - started:.0f} s at {server.base_url}")
        command = [
            sys.executable,
            "-m",
            "loadtests",
            "--host",
            server.base_url,
            "--free-users",
            "0",
            "--pro-users",
            "0",
            "--internal-users",
            "0",
            "--sweep-rates",
            args.rates,
            "--sweep-step-seconds",
            str(args.step_seconds),
            "--max-tokens",
            str(args.max_tokens),
            "--slo-ttft-p95",
            str(args.slo_ttft_p95),
            "--slo-ttft-ms",
            str(args.slo_ttft_p95),
            "--summary-json",
            str(OUT / "sweep.json"),
            "--summary-html",
            str(OUT / "sweep.html"),
        ]
        print("$ " + " ".join(command))
        sweep_started = time.monotonic()
        code = subprocess.run(command, cwd=REPO_ROOT, timeout=900).returncode
        print(f"sweep: exit {code} after {time.monotonic() - sweep_started:.0f} s")
    _screenshot(OUT / "sweep.html", REPO_ROOT / "docs" / "sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
