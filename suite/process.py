"""Supervise an HTTP server that runs as a child process, for the duration of a ``with``.

``ServerSupervisor`` runs a command that is handed a port file (the server binds a free port and writes
its number there, so no port is guessed and raced for), polls ``GET /health`` with a deadline, fails at
once with the tail of the server's output if the process exits, and stops it with SIGTERM, then SIGKILL
of its whole process group. Output goes to files, never pipes, so a chatty server cannot block on a full
pipe buffer.

    with ServerSupervisor(lambda port_file: [..., "--port-file", str(port_file)]) as server:
        httpx.get(f"{server.base_url}/health")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = ["Progress", "ServerExited", "ServerNotReady", "ServerStartError", "ServerSupervisor", "tail"]

Progress = Callable[[str], None]

#: Lines of output quoted when a start fails.
TAIL_LINES = 40
#: Bytes read from the end of a log for its tail: enough for many lines, bounded for a huge log.
_TAIL_BYTES = 64 * 1024


class ServerStartError(RuntimeError):
    """The server exited or did not become healthy in time; the message holds its output's tail."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        #: The tail of the server's output (also in the message).
        self.output = output


class ServerExited(ServerStartError):
    """The server process exited before it answered ``GET /health``."""

    def __init__(self, message: str, output: str, code: int) -> None:
        super().__init__(message, output)
        self.code = code


class ServerNotReady(ServerStartError):
    """The server was still running but not healthy when the start-up deadline passed."""


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or ``(no output)`` when it is missing or empty."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


class ServerSupervisor:
    """One server child process: ``command(port_file)`` is what runs.

    ``name`` is how messages call the server. ``env`` entries override the inherited environment;
    ``merge_output`` sends stderr to the stdout file (one log) instead of its own file. ``progress``,
    when given, hears every ``progress_every_s`` how long the start has taken so far.
    """

    def __init__(
        self,
        command: Callable[[Path], Sequence[str]],
        *,
        name: str = "the server",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        startup_timeout: float = 60.0,
        stop_grace_s: float = 15.0,
        merge_output: bool = False,
        poll_s: float = 0.1,
        tail_lines: int = 60,
        progress: Progress | None = None,
        progress_every_s: float = 5.0,
        workdir_prefix: str = "conform42-server-",
    ) -> None:
        self.command = command
        self.name = name
        self.env = dict(env or {})
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.stop_grace_s = stop_grace_s
        self.merge_output = merge_output
        self.poll_s = poll_s
        self.tail_lines = tail_lines
        self.progress = progress
        self.progress_every_s = progress_every_s
        self.port: int | None = None
        self.returncode: int | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
        self.port_file = self.workdir / "port"
        self.stdout_path = self.workdir / ("server.log" if merge_output else "stdout.txt")
        self.stderr_path = self.stdout_path if merge_output else self.workdir / "stderr.txt"
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------------------------------ state

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} is not ready")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id, which is also its process group's id; None before ``start()``."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def log_tail(self, lines: int | None = None) -> str:
        """The last lines of the output (of stdout and of stderr, labelled, when they are apart)."""
        lines = self.tail_lines if lines is None else lines
        if self.merge_output:
            return tail(self.stdout_path, lines)
        return (
            f"--- stdout (last {lines} lines) ---\n{tail(self.stdout_path, lines)}\n"
            f"--- stderr (last {lines} lines) ---\n{tail(self.stderr_path, lines)}"
        )

    # ---------------------------------------------------------------------------------- start / stop

    def start(self) -> None:
        """Start the process and return at once (see ``wait_ready``)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with contextlib.ExitStack() as files:
            out = files.enter_context(self.stdout_path.open("wb"))
            err = subprocess.STDOUT if self.merge_output else files.enter_context(self.stderr_path.open("wb"))
            self._proc = subprocess.Popen(
                list(self.command(self.port_file)),
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                # Own process group: stop() reaches whatever the server forks (vLLM engines), and a Ctrl-C
                # aimed at the supervising program does not kill the server before it is stopped in order.
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        """Poll the port file, then ``GET /health``, until healthy; raise at once if the process exits.

        Raises ``ServerExited`` or, after ``startup_timeout``, ``ServerNotReady``.
        """
        assert self._proc is not None, "start() first"
        started = time.monotonic()
        deadline = started + self.startup_timeout
        next_progress = started + self.progress_every_s
        with httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0), trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    self.returncode = code
                    output = self.log_tail()
                    raise ServerExited(
                        f"{self.name} exited with code {code} before it was ready\n{output}", output, code
                    )
                if self.port is None:
                    with contextlib.suppress(OSError, ValueError):
                        self.port = int(self.port_file.read_text(encoding="utf-8").strip())
                if self.port is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{self.base_url}/health").status_code == 200:
                            return
                now = time.monotonic()
                if now >= deadline:
                    output = self.log_tail()
                    raise ServerNotReady(
                        f"{self.name} was not healthy after {self.startup_timeout:.0f} s\n{output}", output
                    )
                if self.progress is not None and now >= next_progress:
                    self.progress(f"waiting for {self.name}: {now - started:.0f} s")
                    next_progress = now + self.progress_every_s
                time.sleep(self.poll_s)

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the server process itself (not its group), as a supervisor or Ctrl-C would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self._proc is not None, "start() first"
        self.returncode = self._proc.wait(timeout)
        return self.returncode

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM the process group, wait up to ``grace_s`` (default ``stop_grace_s``), then SIGKILL it;
        return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.stop_grace_s if grace_s is None else grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Whatever the leader left in its group (vLLM workers, say) must not outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 0)  # raises when the group is empty: then there is nothing to kill
            os.killpg(proc.pid, signal.SIGKILL)
        self.returncode = proc.returncode
        return self.returncode

    def close(self) -> None:
        """Stop the server and remove its folder (port file and output)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------------------ context manager

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
