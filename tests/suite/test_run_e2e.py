"""``conform42 run`` end to end, as a user runs it: a child process, from a directory outside the checkout,
against real servers: the reference server (sim engine), deliberately broken targets, a target nobody
listens on and one that never answers. The tests it runs are the stand-ins in ``fixtures/conformance``
(``--tests``), so these tests do not depend on the behaviour suite's contents.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.slow

FIXTURE_TESTS = Path(__file__).parent / "fixtures" / "conformance"
DEMO_FREE = "sk-42ai-demo-free-0000000000000001"
TESTS = ["--tests", str(FIXTURE_TESTS)]


@pytest.fixture(scope="module")
def sim_server():
    with ServerProcess(["--engine", "sim", "--log-level", "warning"]) as server:
        yield server


def test_conformant_target_exits_0_and_writes_the_reports(sim_server, run_conform42, tmp_path):
    report = tmp_path / "out"
    result = run_conform42(
        ["run", "--target", sim_server.base_url, "--key-free", DEMO_FREE, "--report", str(report), *TESTS]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CONFORMANT" in result.stdout
    # The pro key was not given: its test is Disabled, and the verdict line says so.
    assert "1 MUST disabled" in result.stdout
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    assert data["verdict"] == "CONFORMANT"
    assert DEMO_FREE not in (report / "results.json").read_text(encoding="utf-8")
    assert DEMO_FREE not in result.stdout + result.stderr
    by_id = {r["id"]: r["outcome"] for r in data["requirements"]}
    assert (by_id["AUTH-001"], by_id["MODEL-002"]) == ("Pass", "Disabled")
    ET.parse(report / "junit.xml")
    assert (report / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_requirements_expression_runs_only_those(sim_server, run_conform42, tmp_path):
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
            str(tmp_path),
            *TESTS,
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in data["requirements"]] == ["AUTH-001"]


def test_keys_from_environment_and_config_file(sim_server, run_conform42, tmp_path):
    (tmp_path / "conform42.toml").write_text(
        f'target = "{sim_server.base_url}"\nrequirements = "AUTH-001"\n[keys]\nfree = "${{MY_KEY}}"\n',
        encoding="utf-8",
    )
    result = run_conform42(["run", *TESTS], env={"MY_KEY": DEMO_FREE})
    assert result.returncode == 0, result.stdout + result.stderr


def _token_without_task_token() -> FastAPI:
    app = FastAPI()

    @app.post("/api/token")
    async def token() -> JSONResponse:
        return JSONResponse({"token": "not the documented member"})

    return app


def test_nonconforming_target_exits_1_naming_the_requirement(serve_app, run_conform42, tmp_path):
    with serve_app(_token_without_task_token()) as url:
        result = run_conform42(
            [
                "run",
                "--target",
                url,
                "--key-free",
                "sk-test-free-123",
                "-k",
                "AUTH-001",
                "--report",
                str(tmp_path),
                *TESTS,
            ]
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL AUTH-001 [MUST]" in result.stdout
    assert "Reproduce with:" in result.stdout and "$CONFORM42_KEY_FREE" in result.stdout
    assert "sk-test-free-123" not in result.stdout
    assert "NON-CONFORMANT" in result.stdout
    failed = [
        c.get("name", "")
        for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
        if c.find("failure") is not None
    ]
    assert [name.split(":")[0] for name in failed] == ["AUTH-001"]


def test_unreachable_target_exits_2_quickly(closed_port_url, run_conform42):
    started = time.monotonic()
    result = run_conform42(["run", "--target", closed_port_url, "--key-free", "k", "-k", "AUTH-001", *TESTS])
    assert result.returncode == 2, result.stdout + result.stderr
    # The preflight's usage error: one line, and no verdict (see test_preflight_run.py).
    assert "cannot reach the target" in result.stderr and "INCONCLUSIVE" not in result.stdout
    assert time.monotonic() - started < 30


def test_hanging_target_fails_within_the_request_timeout(hanging_target, run_conform42):
    started = time.monotonic()
    result = run_conform42(
        ["run", "--target", hanging_target, "--key-free", "k", "-k", "AUTH-001", "--timeout", "2", *TESTS]
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not answer in time" in result.stdout
    assert time.monotonic() - started < 40


def test_hanging_target_fails_at_the_per_test_timeout(hanging_target, run_conform42):
    result = run_conform42(
        [
            "run",
            "--target",
            hanging_target,
            "--key-free",
            "k",
            "-k",
            "AUTH-001",
            "--timeout",
            "60",
            "--test-timeout",
            "3",
            *TESTS,
        ]
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test exceeded 3 s" in result.stdout


def test_without_target_it_starts_and_stops_the_reference_server(run_conform42, tmp_path):
    result = run_conform42(["run", "--reference-engine", "sim", "--report", str(tmp_path), *TESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reference server ready" in result.stdout
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    # All three demo keys were used: nothing is Disabled for a missing key.
    assert {r["id"]: r["outcome"] for r in data["requirements"]}["MODEL-002"] == "Pass"
    assert "sk-42ai-demo" not in (tmp_path / "results.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--requirements", "AUTH and"], "--requirements"),
        (["--target", "ftp://x"], "http:// or https://"),
        (["--config", "/nonexistent/conform42.toml"], "does not exist"),
    ],
    ids=["bad-expression", "bad-url", "missing-config"],
)
def test_usage_errors_exit_2_with_one_line(run_conform42, args, message):
    result = run_conform42(["run", *args, *TESTS], timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_matching_test_exits_2(sim_server, run_conform42):
    result = run_conform42(["run", "--target", sim_server.base_url, "-k", "PIPE-001", *TESTS])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "INCONCLUSIVE" in result.stdout and "no test ran for the selected requirements" in result.stdout
