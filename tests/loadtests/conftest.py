"""Run the load harness as a child process (Locust must never be imported into pytest: it
monkey-patches the process with gevent) against reference servers on the sim engine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server_process import REPO_ROOT, ServerProcess

HERE = Path(__file__).resolve().parent
FAULT_KEYS = HERE / "over_admission_keys.toml"
SHORT_TTL_LAUNCHER = HERE / "short_ttl_server.py"
#: Per-token delay of the sim engine: 32 tokens take about 0.2 s, so tier limits are really exercised.
SIM_TOKEN_DELAY = "0.005"


@dataclass
class Run:
    returncode: int
    output: str
    summary: dict[str, Any]
    csv_prefix: Path


def run_child_check(code: str, *args: str) -> None:
    """Run ``code`` in a child Python and require it to end by printing "ok": code that imports Locust
    or gevent runs there, since they patch the process they are imported into."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == ["ok"], (
        result.stdout + result.stderr
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: Sequence[str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "loadtests", *args],
            cwd=REPO_ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise


def run_harness(tmp: Path, base_url: str, *args: str, timeout: float = 120, workers: int = 0) -> Run:
    """``python -m loadtests --host URL ...`` (plus ``workers`` worker processes when distributed)."""
    summary_path, csv_prefix = tmp / "summary.json", tmp / "load"
    extra: list[str] = []
    worker_procs: list[subprocess.Popen[bytes]] = []
    if workers:
        port = free_port()
        extra = [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            "30",
        ]
    main = _spawn(
        ["--host", base_url, "--summary-json", str(summary_path), "--csv", str(csv_prefix), *extra, *args],
        tmp / "main.txt",
    )
    try:
        for i in range(workers):
            worker_procs.append(
                _spawn(
                    ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                    tmp / f"worker{i}.txt",
                )
            )
        code = _wait(main, timeout)
        for w in worker_procs:
            _wait(w, 30)
    finally:
        for p in [main, *worker_procs]:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
    output = (tmp / "main.txt").read_text(encoding="utf-8", errors="replace")
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    return Run(code, output, summary, csv_prefix)


class ShortTtlServer(ServerProcess):
    """The reference server with task tokens that live ``ttl`` seconds (test-only launcher)."""

    def __init__(self, ttl: int, args: Sequence[str]) -> None:
        super().__init__(args)
        self.ttl = ttl

    def start(self) -> None:
        command = [
            sys.executable,
            str(SHORT_TTL_LAUNCHER),
            str(self.ttl),
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            *self.args,
        ]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(
                command,
                cwd=self.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )


def sim_args(data_dir: Path, *more: str) -> list[str]:
    return [
        "--engine",
        "sim",
        "--sim-token-delay",
        SIM_TOKEN_DELAY,
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
        *more,
    ]


@pytest.fixture(scope="module")
def clean_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(sim_args(tmp_path_factory.mktemp("clean-data"))) as server:
        yield server


@pytest.fixture(scope="module")
def over_admitting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The planted fault: the harness's "free" key is registered as pro, so three run at once."""
    args = sim_args(tmp_path_factory.mktemp("fault-data"), "--keys-file", str(FAULT_KEYS))
    with ServerProcess(args) as server:
        yield server
