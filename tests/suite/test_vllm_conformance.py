"""`conform42 run` with no target starts the bundled reference server on real vLLM,
runs the whole suite against it and reports CONFORMANT, with no failure at any level, in < 5 minutes.

Marked vllm (needs `make vllm`) and slow (engine start-up plus the full run, about 4 minutes here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

CONFORM42 = Path(sys.executable).with_name("conform42")


def test_the_bundled_reference_server_on_vllm_is_conformant(tmp_path: Path) -> None:
    report = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFORM42_")}
    env["HF_HUB_OFFLINE"] = "1"
    started = time.monotonic()
    run = subprocess.run(
        [str(CONFORM42), "run", "--report", str(report)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    wall = time.monotonic() - started
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-8000:]
    results = json.loads((report / "results.json").read_text())
    assert results["verdict"] == "CONFORMANT"
    # Zero false failures: the reference server is built from the same catalogue, so no requirement of
    # any level may fail or error against it.
    bad = {r["id"]: r["outcome"] for r in results["requirements"] if r["outcome"] in ("Fail", "Error")}
    assert not bad, output[-8000:]
    assert results["summary"]["Pass"] >= 90
    # The run time is printed in the report; the 5-minute goal is reported here, not asserted as a
    # timing (the machine is shared), but a run far beyond it means something hangs.
    print(f"conform42 run on vLLM: suite {results['duration_s']:.0f} s, wall clock {wall:.0f} s")
    assert (report / "junit.xml").is_file() and (report / "report.html").is_file()
