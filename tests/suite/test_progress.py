"""The progress line (``suite.progress``): its text, live at a terminal or plain in a log, and that
``conform42 run`` shows it while a test runs (``-q``: not at all)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

import suite.progress as progress_module
from suite.progress import Progress, elapsed_text
from tests.support.server_process import ServerProcess

DEMO_FREE = "sk-42ai-demo-free-0000000000000001"
SLOW_TESTS = ["--tests", str(Path(__file__).parent / "fixtures" / "slow_conformance")]
AREAS = {"AUTH-001": "auth", "LIMIT-001": "limits", "CHAT-001": "chat"}


def _progress(stream: io.StringIO, *, live: bool) -> Progress:
    return Progress(stream, total=3, live=live, areas=AREAS, width=80)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.9, "59 s"), (187, "3m07s"), (3720, "1h02m")])
def test_elapsed_reads_like_a_clock(seconds: float, text: str) -> None:
    assert elapsed_text(seconds) == text


def test_the_line_says_done_total_area_elapsed_and_failures() -> None:
    stream = io.StringIO()
    progress = _progress(stream, live=False)
    progress.test_started(("AUTH-001",))
    progress.test_finished(failed=True, error=False)
    progress.test_started(("LIMIT-001", "CHAT-001"))
    progress.draw()
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert "conform42: 1/3 tests (33%), limits, chat running, 0 s, 1 failed so far" in line


def test_a_live_line_is_redrawn_in_place_and_erased() -> None:
    stream = io.StringIO()
    progress = _progress(stream, live=True)
    progress.test_started(("CHAT-001",))  # live: drawn at once
    progress.test_finished(failed=False, error=True)
    progress.draw()
    progress.clear()
    text = stream.getvalue()
    assert "\n" not in text
    frames = text.split("\r")
    assert "0/3 tests" in frames[1] and "1/3 tests" in frames[2] and "1 errors" in frames[2]
    assert all(len(f) == 79 for f in frames[1:4])  # padded to the width, so a shorter line leaves no tail
    assert frames[3].strip() == "" and text.endswith("\r")


def test_plain_lines_keep_coming_while_a_test_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "PLAIN_PERIOD_S", 0.05)
    stream = io.StringIO()
    progress = _progress(stream, live=False)
    progress.start()
    time.sleep(0.4)
    text = stream.getvalue()
    progress.stop()
    assert text.count("conform42: 0/3 tests") >= 3
    assert stream.closed  # the copy of the run's standard output is given back


@pytest.fixture(scope="module")
def sim_server():
    with ServerProcess(["--engine", "sim", "--log-level", "warning"]) as server:
        yield server


@pytest.mark.slow
def test_run_shows_progress_in_a_log_while_a_test_runs(sim_server, run_conform42) -> None:
    args = ["run", "--target", sim_server.base_url, "--key-free", DEMO_FREE, *SLOW_TESTS]
    shown = run_conform42(args)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "conform42: 0/1 tests (0%), auth running" in shown.stdout  # not a terminal: plain lines
    quiet = run_conform42([*args, "-q"])
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "tests (" not in quiet.stdout
