"""One reference server over real vLLM for every test module that needs one.

Starting ``python -m reference_server --engine vllm`` costs 65-75 s here (two engines side by side on
two cores); three modules used to start one each. They now share :class:`SharedVllmReference`: started
by the first test that asks for it, stopped as soon as the next test to run does not need it (the hook
in ``tests/conftest.py``), so it never idles beside tests that start engines of their own, and started
again if a later test asks once more. Tests that change its state (a batch, a held stream) must leave
it as they found it: the next module gets the same server.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.server_process import ServerProcess

__all__ = ["SharedVllmReference", "engine_urls"]

_BANNER = re.compile(r"vllm: chat \S+ at (http://\S+?), embeddings \S+ at (http://\S+)")


def engine_urls(server: ServerProcess) -> tuple[str, str]:
    """The chat and embedding engine URLs a vLLM reference server prints in its banner."""
    found = _BANNER.search(server.stdout())
    assert found, f"engine URLs not found in the server banner:\n{server.log_tail()}"
    return found.group(1), found.group(2)


class SharedVllmReference:
    """The shared server, started on first use: ``shared.server()``; ``stop()`` ends it."""

    def __init__(self, data_root: Path) -> None:
        self._data_root = data_root
        self._starts = 0
        self._running: ServerProcess | None = None

    def server(self) -> ServerProcess:
        if self._running is None:
            # Imported here: tests/conftest.py imports this module in every run, vLLM or not.
            from reference_server.model_prep import ModelNotAvailable, find_minilm_dir
            from tests.support.vllm_engines import CACHE, require_vllm

            require_vllm("make vllm")

            try:
                find_minilm_dir()
            except ModelNotAvailable as exc:
                pytest.skip(str(exc))
            self._starts += 1
            data_dir = self._data_root / f"data-{self._starts}"
            data_dir.mkdir(parents=True)
            # The shared cache holds the converted chat model (converting again would cost ~20 s).
            args = [
                "--engine",
                "vllm",
                "--startup-timeout",
                "300",
                "--cache-dir",
                str(CACHE),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "warning",
            ]
            server = ServerProcess(args, startup_timeout=330)
            server.__enter__()
            self._running = server
        return self._running

    def stop(self) -> None:
        if self._running is not None:
            server, self._running = self._running, None
            server.__exit__(None, None, None)
