"""Run ``python -m reference_server`` as a real child process, for tests that need the whole program.

:class:`ServerProcess` is the suite's ``ServerSupervisor`` with the reference server's command line: it
starts the server on a free port (``--port 0 --port-file``) in its own process group, waits until
``GET /health`` answers, and on exit stops it the way an operator would (SIGTERM, then SIGKILL of the
whole group after a grace period). stdout and stderr go to separate files.

    with ServerProcess(["--engine", "sim"]) as server:
        httpx.get(f"{server.base_url}/health")
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from suite.process import ServerStartError, ServerSupervisor

__all__ = ["REPO_ROOT", "ServerProcess", "ServerStartError"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerProcess(ServerSupervisor):
    """``python -m <module> --port 0 --port-file <tmp> *args`` for the duration of a ``with``.

    ``module`` is ``reference_server`` unless a test serves something built on it (a planted fault).
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60,
        *,
        cwd: Path | None = None,
        module: str = "reference_server",
    ) -> None:
        self.args = list(args)
        self.module = module
        super().__init__(self._command, env=env, cwd=cwd or REPO_ROOT, startup_timeout=startup_timeout)

    def _command(self, port_file: Path) -> list[str]:
        return [sys.executable, "-m", self.module, "--port", "0", "--port-file", str(port_file), *self.args]
