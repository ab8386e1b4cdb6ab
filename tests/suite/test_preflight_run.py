"""``conform42 run`` with the preflight, end to end: what the user must fix ends the run before any test,
with exit 2 and one line on stderr (never a verdict); ``--token-url`` works as base URL or endpoint.

Against the reference server (sim engine, demo keys), a port nobody listens on, and the stand-in
conformance tests of ``fixtures/conformance``. Each run takes a second or two.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from suite.run_command import build_pytest_command
from tests.support.server_process import ServerProcess

FIXTURE_TESTS = Path(__file__).parent / "fixtures" / "conformance"
TESTS = ["--tests", str(FIXTURE_TESTS)]
DEMO_FREE = "sk-42ai-demo-free-0000000000000001"
DEMO_PRO = "sk-42ai-demo-pro-0000000000000001"


@pytest.fixture(scope="module")
def sim_server():
    with ServerProcess(["--engine", "sim", "--log-level", "warning"]) as server:
        yield server


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _nothing_ran(result, report: Path) -> None:
    assert "running " not in result.stdout  # the line that announces the tests
    assert "CONFORMANT" not in result.stdout and "INCONCLUSIVE" not in result.stdout
    assert not (report / "results.json").exists()  # nothing was judged, so nothing to report


def test_unreachable_target_exits_2_with_one_line_before_any_test(closed_port_url, run_conform42, tmp_path):
    started = time.monotonic()
    result = run_conform42(
        [
            "run",
            "--target",
            closed_port_url,
            "--key-free",
            "k",
            "-k",
            "AUTH-001",
            "--report",
            str(tmp_path / "out"),
            *TESTS,
        ],
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert _one_line(result.stderr) == (
        f"conform42: cannot reach the target {closed_port_url} (connection refused): check --target"
    )
    _nothing_ran(result, tmp_path / "out")
    assert time.monotonic() - started < 30


def test_refused_key_exits_2_with_one_line_naming_the_option(sim_server, run_conform42, tmp_path):
    result = run_conform42(
        [
            "run",
            "--target",
            sim_server.base_url,
            "--key-free",
            DEMO_FREE,
            "-k",
            "AUTH-001",
            "--report",
            str(tmp_path / "out"),
            *TESTS,
        ],
        env={"CONFORM42_KEY_PRO": "sk-42ai-not-a-real-key"},
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert _one_line(result.stderr) == (
        f"conform42: the pro key was refused by POST {sim_server.base_url}"
        "/api/token (HTTP 401): check --key-pro / CONFORM42_KEY_PRO"
    )
    assert "sk-42ai-not-a-real-key" not in result.stdout + result.stderr
    _nothing_ran(result, tmp_path / "out")


@pytest.mark.parametrize("suffix", ["", "/api/token/"])  # the others: test_token_exchange.py
def test_token_url_as_base_or_full_endpoint(sim_server, run_conform42, suffix):
    url = sim_server.base_url
    result = run_conform42(
        [
            "run",
            "--target",
            url,
            "--token-url",
            url + suffix,
            "--key-free",
            DEMO_FREE,
            "--key-pro",
            DEMO_PRO,
            "-k",
            "AUTH-001",
            *TESTS,
        ],
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "conform42: preflight: target reachable, 2 keys exchanged" in result.stdout
    assert "CONFORMANT (1 MUST pass)" in result.stdout


def test_token_url_without_an_exchange_exits_2(sim_server, run_conform42):
    result = run_conform42(
        [
            "run",
            "--target",
            sim_server.base_url,
            "--token-url",
            sim_server.base_url + "/v1",
            "--key-free",
            DEMO_FREE,
            "-k",
            "AUTH-001",
            *TESTS,
        ],
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "/v1/api/token answered HTTP 404" in _one_line(result.stderr)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--profile", "openai"], "conform42 run: argument --profile: invalid choice: 'openai'"),
        (["--timeout", "soon"], "conform42 run: argument --timeout: not a number: soon"),
        (["--target", "example.com"], "conform42: --target must be an http:// or https:// URL"),
        (["--token-url", "ftp://auth"], "conform42: --token-url must be an http:// or https:// URL"),
        (["--image-url", "/tmp/x.png"], "conform42: --image-url must be a data:, http:// or https:// URL"),
        (["--accept-skip", "LIMIT-001", "--accept-skip", "NOPE-001"], "conform42: --accept-skip: NOPE-001"),
    ],
    ids=["profile", "timeout", "target", "token-url", "image-url", "accept-skip"],
)
def test_bad_option_values_exit_2_with_one_line(run_conform42, args, message):
    result = run_conform42(["run", *args, *TESTS], timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert _one_line(result.stderr).startswith(message)


def test_bad_settings_from_the_environment_exit_2_with_one_line(run_conform42):
    result = run_conform42(["run", *TESTS], env={"CONFORM42_PROFILE": "openai"}, timeout=30)
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith("conform42: profile must be one of 42ai, fortytwo")


def test_new_options_reach_the_pytest_child(tmp_path):
    args = argparse.Namespace(
        tests=None,
        test_timeout=120.0,
        session_timeout=3600.0,
        verbose=0,
        exitfirst=False,
        maxfail=None,
        target="http://t",
        token_url=None,
        profile=None,
        level=None,
        gate=None,
        requirements=None,
        report_dir=None,
        request_timeout=None,
        chat_model=None,
        embed_model=None,
        reference_engine=None,
        config=None,
        image_url="https://example.com/a.png",
        accept_skip=["LIMIT-001", "LIMIT-002,LIMIT-003"],
    )
    command = build_pytest_command(args, tmp_path / "pytest.ini")
    assert command[command.index("--image-url") + 1] == "https://example.com/a.png"
    accepted = [command[i + 1] for i, arg in enumerate(command) if arg == "--accept-skip"]
    assert accepted == ["LIMIT-001", "LIMIT-002,LIMIT-003"]  # split and checked by the settings


IMAGE_MODULE = """
from suite.markers import requirement

@requirement("MODEL-001")
def test_image_url_reaches_the_target(target):
    assert target.image_url == "https://img.example/chart.png"
"""


def test_image_url_and_accepted_skips_reach_the_run(sim_server, run_pytest, tmp_path):
    result = run_pytest(
        IMAGE_MODULE,
        f"--target={sim_server.base_url}",
        f"--key-free={DEMO_FREE}",
        "--image-url=https://img.example/chart.png",
        "--accept-skip=LIMIT-001",
        "--accept-skip=limit-002",
        "--report=report",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))["config"]
    assert config["accept_skip"] == ["LIMIT-001", "LIMIT-002"]
    assert config["image_url"] == "https://img.example/chart.png"
