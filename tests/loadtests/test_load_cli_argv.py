"""``python -m loadtests`` builds Locust's command line (checked without importing Locust)."""

from __future__ import annotations

from loadtests.__main__ import LOCUSTFILE, build_argv


def test_defaults_are_headless_with_the_tier_users_and_60_s():
    argv = build_argv(["--host", "http://h"])
    assert argv[:2] == ["-f", str(LOCUSTFILE)]
    assert "--headless" in argv
    assert argv[argv.index("-u") + 1] == "9"  # 3 free + 4 pro + 2 internal
    assert argv[argv.index("-t") + 1] == "60s"


def test_user_counts_and_open_loop_set_the_user_total():
    argv = build_argv(
        ["--free-users", "1", "--pro-users", "0", "--internal-users", "0", "--open-loop-rate", "5"]
    )
    assert argv[argv.index("-u") + 1] == "2"


def test_given_options_are_not_overridden():
    argv = build_argv(["-u", "7", "-t", "5s", "--web"])
    assert argv.count("-u") == 1 and argv.count("-t") == 1
    assert "--headless" not in argv and "--web" not in argv


def test_profile_fortytwo_becomes_the_api_profile():
    argv = build_argv(["--profile", "fortytwo"])
    assert "--api-profile" in argv and "--profile" not in argv


def test_workers_get_only_the_locustfile():
    argv = build_argv(["--worker", "--master-host", "127.0.0.1"])
    assert argv == ["-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1"]


def test_help_lists_the_harness_options():
    import subprocess
    import sys

    from tests.support.server_process import REPO_ROOT

    out = subprocess.run(
        [sys.executable, "-m", "loadtests", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for option in ("--api-profile", "--free-users", "--open-loop-rate", "--slo-ttft-p95", "--host"):
        assert option in out.stdout


def test_conform42_load_runs_the_harness():
    # `conform42 load` execs `python -m loadtests` (the suite never imports Locust).
    import subprocess
    import sys
    from pathlib import Path

    conform42 = Path(sys.executable).with_name("conform42")
    run = subprocess.run([str(conform42), "load", "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "python -m loadtests" in run.stdout
