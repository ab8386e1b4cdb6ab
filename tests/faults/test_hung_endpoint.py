"""A hung endpoint is judged in minutes (``suite.liveness``): against the planted ``server_hangs`` fault
(every chat request read and never answered) the chat tests that met the hang Fail, the endpoint is then
counted as stopped, the chat tests after it end at once as Error naming it, and the verdict says so. The
whole planted set's hang faults are timed by ``make prove`` (README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.prove import FaultServer, _server_args, run_suite, suite_command

pytestmark = pytest.mark.slow

REQUEST_TIMEOUT_S = 4.0


@pytest.mark.timeout(900)
def test_a_hung_chat_endpoint_stops_being_sent_to(tmp_path: Path) -> None:
    report = tmp_path / "report"
    with FaultServer("server_hangs", _server_args("42ai", ())) as server:
        command = suite_command(server.base_url, report, ["CHAT", "STREAM"], gate=None)
        command += ["--timeout", f"{REQUEST_TIMEOUT_S:g}"]  # the last --timeout wins
        run = run_suite(server.base_url, report, timeout_s=800, command=command)
    results = json.loads((report / "results.json").read_text(encoding="utf-8"))
    assert run.exit_code == 1, run.stdout_tail
    assert "POST /v1/chat/completions stopped answering" in results["reason"]
    tests = [t for r in results["requirements"] for t in r["tests"]]
    stopped = [t for t in tests if t["outcome"] == "Error" and "stopped answering" in json.dumps(t)]
    failed = [t for t in tests if t["outcome"] == "Fail"]
    assert failed, "the tests that met the hang keep their Fail"
    # Without the stop each of the ~40 chat and stream tests would wait out its own deadline (the time
    # saved is measured by `make prove`, not asserted here).
    assert len(stopped) >= 5, "the chat tests after the stop end as Error without waiting"
