"""A stand-in for one run of ``python -m loadtests`` in the tests of ``--repeat`` (no Locust, no server).

``FAKE_PLAN`` says per run (comma-separated, by run number): ``ok`` writes a passing summary, ``fail``
one with a violation (exit 1), ``crash`` exits 3 without a summary, ``usage`` exits 2 like a bad
option, ``sleep`` waits to be stopped. The run's number is read from the summary path (run-<k>.json);
every run appends its arguments to ``FAKE_ARGS`` (a file) when set.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from loadtests.collector import Collector
from loadtests.metrics import stream_timing
from loadtests.report import Thresholds, summarise, write_json


def _summary(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    c = Collector()
    for _ in range(30):
        times = (0.01 + np.cumsum(rng.lognormal(np.log(0.005), 0.3, 8))).tolist()
        c.record_ok("pro", "42-logic", times[-1] * 1000)
        c.record_work("pro", "42-logic", 1, 8, 20, 8)
        c.record_stream("pro", "42-logic", stream_timing(0.0, times, times[-1], usage_tokens=8))
    return summarise(c, Thresholds())


def main() -> int:
    args = sys.argv[1:]
    path = Path(args[args.index("--summary-json") + 1])
    index = int(path.stem.removeprefix("run-"))
    if os.environ.get("FAKE_ARGS"):
        with open(os.environ["FAKE_ARGS"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"run": index, "pid": os.getpid(), "args": args}) + "\n")
    plan = os.environ.get("FAKE_PLAN", "").split(",")
    step = plan[index - 1] if index <= len(plan) else "ok"
    print(f"fake run {index}: {step}", flush=True)
    if step == "sleep":
        time.sleep(60)
    if step == "crash":
        print("Traceback (most recent call last):\nRuntimeError: planted crash", flush=True)
        return 3
    if step == "usage":
        return 2
    summary = _summary(index)
    if step == "fail":
        summary["violations"] = [
            {"kind": "server-error", "requirement": "", "tier": "pro", "count": 1, "examples": ["500"]}
        ]
        summary["reasons"] = ["1 x server-error [pro]"]
        summary["verdict"], summary["exit_code"] = "fail", 1
    write_json(summary, path)
    return int(summary["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
