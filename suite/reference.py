"""Start the bundled reference server as a child process when a run names no target.

The suite never imports ``reference_server`` (ARCHITECTURE.md): it runs ``python -m reference_server``
under ``suite.process.ServerSupervisor`` (free port, ``GET /health`` polled with a deadline, the log tail
at once if the process exits, SIGTERM then SIGKILL of its whole process group). vLLM needs about 45 s
on two cores to start, so progress is reported.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

from suite.process import Progress, ServerExited, ServerNotReady, ServerSupervisor

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


def repo_root() -> Path | None:
    """The source checkout this package runs from, if any (an installed wheel has none)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


class ReferenceServerError(RuntimeError):
    """The reference server exited or did not become healthy in time; the message holds its log tail."""


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
        self._server = ServerSupervisor(
            self._command,
            name=f"the reference server ({engine})",
            startup_timeout=self.startup_timeout,
            stop_grace_s=_STOP_GRACE_S,
            merge_output=True,
            poll_s=_POLL_S,
            tail_lines=_LOG_TAIL_LINES,
            progress=self.progress,
            progress_every_s=_PROGRESS_EVERY_S,
            workdir_prefix="conform42-reference-",
        )
        self.log_path = self._server.stdout_path

    @property
    def port(self) -> int | None:
        return self._server.port

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ReferenceServerError("the reference server is not ready")
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return self._command(self._server.port_file)

    def _command(self, port_file: Path) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "reference_server",
            "--engine",
            self.engine,
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--log-level",
            "warning",
        ]
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
        self._server.start()

    def wait_ready(self) -> None:
        """Poll the port file, then ``/health``; raise with the log tail on exit or deadline."""
        try:
            self._server.wait_ready()
        except ServerExited as exc:
            raise ReferenceServerError(
                f"the reference server exited with code {exc.code} before it was ready; "
                f"last output:\n{exc.output}"
            ) from None
        except ServerNotReady as exc:
            raise ReferenceServerError(
                f"the reference server ({self.engine}) was not healthy after "
                f"{self.startup_timeout:.0f} s; last output:\n{exc.output}"
            ) from None

    def stop(self) -> int | None:
        """SIGTERM the group, wait, then SIGKILL it; return the exit code."""
        return self._server.stop()

    def close(self) -> None:
        self._server.close()

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
