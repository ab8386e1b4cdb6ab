"""Crash safety of batches with real server processes on the sim engine.

SIGKILL the whole server process group in the middle of a batch, start a new server on the same
``--data-dir``: every task must finish exactly once. Checked over HTTP (exactly ``total`` results, one
per task id) and in the SQLite file itself (each task committed once; the ones cut off by the kill
were claimed again, the ones done before it never).
"""

from __future__ import annotations

import pytest

from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.slow

TOTAL = 45
# 16 sim tokens x 20 ms: a task takes about 0.3 s, so 3 pro workers need about 5 s for the batch.
SIM_ARGS = ["--engine", "sim", "--sim-token-delay", "0.02", "--log-level", "warning"]


def test_sigkill_mid_batch_then_restart_finishes_every_task_exactly_once(
    tmp_path, batch_body, crash_mid_batch, check_finished_once_after_crash
):
    run = crash_mid_batch(
        SIM_ARGS,
        tmp_path / "data",
        batch_body(TOTAL),
        kill_when=lambda b: 6 <= b["completed"] <= TOTAL // 2,
        interval_s=0.02,
    )
    assert 6 <= sum(r["state"] == "completed" for r in run.at_kill) < TOTAL
    assert "requeued" in run.restarted_stderr
    check_finished_once_after_crash(tmp_path / "data", run.at_kill, run.final)


def test_second_server_on_the_same_data_dir_refuses_to_start(tmp_path):
    args = [*SIM_ARGS, "--data-dir", str(tmp_path)]
    with ServerProcess(args):
        second = ServerProcess(args)
        second.start()
        try:
            code = second.wait(30)
            assert code == 2, second.log_tail()
            assert "in use by another reference server process" in second.stderr()
        finally:
            second.__exit__(None, None, None)  # stops it and removes its log folder
