"""Run ``python -m reference_server`` as a real child process, for tests that need the whole program.

One context manager, :class:`ServerProcess`: it starts the server on a free port (``--port 0
--port-file``) in its own process group, waits until ``GET /health`` answers, and on exit stops it
the way an operator would (SIGTERM, then SIGKILL of the whole group after a grace period). Output goes
to files rather than pipes, so a chatty server can never block on a full pipe buffer.

    with ServerProcess(["--engine", "sim"]) as server:
        httpx.get(f"{server.base_url}/health")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from reference_server.vllm_process import tail

__all__ = ["REPO_ROOT", "ServerProcess", "ServerStartError"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerStartError(RuntimeError):
    """The server exited or did not become healthy in time; the message holds its output's tail."""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


class ServerProcess:
    """``python -m reference_server --port 0 --port-file <tmp> *args`` for the duration of a ``with``."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60,
        *,
        cwd: Path | None = None,
    ) -> None:
        self.args = list(args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.cwd = cwd or REPO_ROOT
        self.port: int | None = None
        self.returncode: int | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="conform42-server-"))
        self.port_file = self._dir / "port"
        self.stdout_path = self._dir / "stdout.txt"
        self.stderr_path = self._dir / "stderr.txt"
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------------------------------ state

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not ready")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of stdout and of stderr, labelled, for assertion and failure messages."""
        return (f"--- stdout (last {lines} lines) ---\n{tail(self.stdout_path, lines)}\n"
                f"--- stderr (last {lines} lines) ---\n{tail(self.stderr_path, lines)}")

    # ---------------------------------------------------------------------------------- start / stop

    def start(self) -> None:
        command = [sys.executable, "-m", "reference_server",
                   "--port", "0", "--port-file", str(self.port_file), *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(
                command, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                # Own process group: stop() signals the server and anything it forked, and a Ctrl-C in
                # the terminal running pytest does not hit the server before the fixture stops it.
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        """Poll the port file, then ``GET /health``, until healthy; fail fast if the process exits."""
        assert self._proc is not None, "start() first"
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0), trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    self.returncode = code
                    raise ServerStartError(f"the server exited with code {code} before it was ready\n"
                                           f"{self.log_tail()}")
                if self.port is None:
                    with contextlib.suppress(OSError, ValueError):
                        self.port = int(self.port_file.read_text(encoding="utf-8").strip())
                if self.port is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{self.base_url}/health").status_code == 200:
                            return
                if time.monotonic() >= deadline:
                    raise ServerStartError(f"the server was not healthy after {self.startup_timeout:.0f} s\n"
                                           f"{self.log_tail()}")
                time.sleep(0.1)

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the server process itself (not its group), as a supervisor or Ctrl-C would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self._proc is not None, "start() first"
        self.returncode = self._proc.wait(timeout)
        return self.returncode

    def stop(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM the process group, wait up to ``grace_s``, then SIGKILL it; return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Whatever the leader left in its group (it should be nothing) must not outlive the test.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 0)  # raises when the group is empty: then there is nothing to kill
            os.killpg(proc.pid, signal.SIGKILL)
        self.returncode = proc.returncode
        return self.returncode

    # ------------------------------------------------------------------------------ context manager

    def __enter__(self) -> ServerProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
