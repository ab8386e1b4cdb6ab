"""Start the bundled reference server as a child process when a run names no target.

The suite never imports ``reference_server`` (ARCHITECTURE.md): it runs ``python -m reference_server``
on a free port, polls ``GET /health`` with a deadline (vLLM needs about 45 s on two cores, so progress is
reported), fails fast with the log tail if the process exits, and stops it with SIGTERM, then SIGKILL
of its whole process group. Output goes to files, never pipes, so a chatty server cannot block.
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
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["DEMO_KEYS", "STARTUP_TIMEOUT_S", "ReferenceServer", "ReferenceServerError"]

#: The reference server's demo keys (reference_server/keys/demo_keys.toml), copied as data: the suite
#: must not import the server. For local use only; they are published in the repository.
DEMO_KEYS: dict[str, str] = {
    "free": "sk-42ai-demo-free-0000000000000001",
    "pro": "sk-42ai-demo-pro-0000000000000001",
    "internal": "sk-42ai-demo-internal-0000000000000001",
}
#: vLLM start-up is ~45 s here and the server's own engine deadline is 300 s; allow for both engines.
STARTUP_TIMEOUT_S = {"vllm": 360.0, "sim": 60.0}
#: Seconds per streamed token of the sim engine when the suite starts it.
SIM_TOKEN_DELAY_S = 0.02
_POLL_S = 0.2
_PROGRESS_EVERY_S = 5.0
_STOP_GRACE_S = 20.0
_LOG_TAIL_LINES = 40

Progress = Callable[[str], None]


def repo_root() -> Path | None:
    """The source checkout this package runs from, if any (an installed wheel has none)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


class ReferenceServerError(RuntimeError):
    """The reference server exited or did not become healthy in time; the message holds its log tail."""


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


class ReferenceServer:
    """``with ReferenceServer("sim") as server: server.base_url`` — a running reference server."""

    def __init__(
        self,
        engine: str = "vllm",
        *,
        startup_timeout: float | None = None,
        progress: Progress | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.engine = engine
        self.startup_timeout = startup_timeout or STARTUP_TIMEOUT_S.get(engine, 360.0)
        self.progress = progress or (lambda _message: None)
        self.extra_args = extra_args
        self.port: int | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="conform42-reference-"))
        self.log_path = self._dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ReferenceServerError("the reference server is not ready")
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        port_file = self._dir / "port"
        command = [sys.executable, "-m", "reference_server", "--engine", self.engine,
                   "--port", "0", "--port-file", str(port_file), "--log-level", "warning"]
        if self.engine == "sim":
            # The sim double answers instantly by default; the limit tests need streams that stay open
            # while they probe (about vLLM's pace on this machine: 50 tokens/s).
            command += ["--sim-token-delay", str(SIM_TOKEN_DELAY_S)]
        # In a checkout, `make vllm` converted the model into <repo>/.cache: reuse it from any cwd
        # instead of converting again into ./.cache.
        root = repo_root()
        if root is not None and (root / ".cache").is_dir():
            command += ["--cache-dir", str(root / ".cache")]
        return [*command, *self.extra_args]

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                # Own process group: stop() reaches the vLLM engines it forks, and a Ctrl-C aimed at
                # the suite does not kill the server before the suite has stopped it in order.
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        """Poll the port file, then ``/health``; raise with the log tail on exit or deadline."""
        assert self._proc is not None, "start() first"
        started = time.monotonic()
        deadline = started + self.startup_timeout
        next_progress = started + _PROGRESS_EVERY_S
        port_file = self._dir / "port"
        with httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0), trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise ReferenceServerError(
                        f"the reference server exited with code {code} before it was ready; "
                        f"last output:\n{_tail(self.log_path)}")
                if self.port is None:
                    with contextlib.suppress(OSError, ValueError):
                        self.port = int(port_file.read_text(encoding="utf-8").strip())
                if self.port is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{self.base_url}/health").status_code == 200:
                            return
                now = time.monotonic()
                if now >= deadline:
                    raise ReferenceServerError(
                        f"the reference server ({self.engine}) was not healthy after "
                        f"{self.startup_timeout:.0f} s; last output:\n{_tail(self.log_path)}")
                if now >= next_progress:
                    self.progress(f"waiting for the reference server ({self.engine}): "
                                  f"{now - started:.0f} s")
                    next_progress = now + _PROGRESS_EVERY_S
                time.sleep(_POLL_S)

    def stop(self) -> int | None:
        """SIGTERM the group, wait, then SIGKILL it; return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Whatever the leader left in its group (vLLM workers) must not outlive the run.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ReferenceServer:
        self.progress(f"starting the bundled reference server (--engine {self.engine}) ...")
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        self.progress(f"reference server ready at {self.base_url}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
