"""VllmProcess builds the command line vLLM needs (no vLLM started here)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reference_server.vllm_process import VllmProcess


def _argv(tmp_path, names):
    proc = VllmProcess("/models/chat", names, cache_root=tmp_path, log_file=tmp_path / "log")
    return proc, proc.command(8000)


def test_every_served_name_follows_one_flag(tmp_path):
    # vLLM's argparse keeps only the last --served-model-name, so the names must share one flag.
    proc, argv = _argv(tmp_path, ("42-think", "42-logic", "42-general"))
    assert argv.count("--served-model-name") == 1
    at = argv.index("--served-model-name")
    assert argv[at + 1 : at + 4] == ["42-think", "42-logic", "42-general"]
    assert proc.served_model_name == "42-think"  # the name vLLM echoes


def test_a_single_name_is_accepted_as_a_string(tmp_path):
    proc, argv = _argv(tmp_path, "42-embed")
    assert proc.served_names == ("42-embed",)
    assert argv[argv.index("--served-model-name") + 1] == "42-embed"


def test_no_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        _argv(tmp_path, ())


def test_intel_openmp_does_not_spin_between_steps(tmp_path, monkeypatch):
    monkeypatch.delenv("KMP_BLOCKTIME", raising=False)
    proc, _ = _argv(tmp_path, "42-embed")
    env = proc.environment(tmp_path / "tmp")
    if "libiomp5" not in env.get("LD_PRELOAD", ""):
        pytest.skip("no Intel OpenMP in this environment (the vllm extra is not installed)")
    assert env["KMP_BLOCKTIME"] == "0"
    monkeypatch.setenv("KMP_BLOCKTIME", "200")  # the caller's choice wins
    assert proc.environment(tmp_path / "tmp")["KMP_BLOCKTIME"] == "200"


def _niceness(pid: int) -> int:
    # /proc/<pid>/stat: the fields after the command's closing parenthesis start at field 3 (state);
    # nice is field 19.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_server_and_what_it_starts_run_at_the_given_niceness(tmp_path):
    # A stand-in interpreter that starts a child of its own (as vLLM starts its engine core) and waits:
    # both must run at the niceness, which they inherit only if it is set before exec.
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\nsleep 60 &\necho $! > "$0.child"\nwait\n')
    fake.chmod(0o755)
    proc = VllmProcess(
        "/models/chat", "42-think", cache_root=tmp_path, log_file=tmp_path / "log", python=fake, nice=7
    )
    proc.start()
    try:
        child_file = Path(f"{fake}.child")
        deadline = time.monotonic() + 10
        while not (child_file.exists() and child_file.read_text().strip()):
            assert time.monotonic() < deadline, "the stand-in never started its child"
            time.sleep(0.05)
        assert proc.pid is not None
        expected = min(19, os.nice(0) + 7)  # niceness stops at 19 if this test already runs niced
        assert _niceness(proc.pid) == expected
        assert _niceness(int(child_file.read_text())) == expected
        # Under autogroup scheduling the session's group carries the niceness too (vllm_launch.py).
        group = Path(f"/proc/{proc.pid}/autogroup")
        if group.exists() and Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1":
            assert group.read_text().split()[-2:] == ["nice", "7"]
    finally:
        proc.stop(grace_s=2)


def test_niceness_out_of_range_is_refused(tmp_path):
    with pytest.raises(ValueError, match="between 0 and 19"):
        VllmProcess("/models/chat", "42-think", cache_root=tmp_path, log_file=tmp_path / "log", nice=20)
