"""Fixtures for the tests of the suite's machinery (plugin, outcomes, reports, ``conform42 run``).

``fixtures/conformance`` holds tiny conformance-style tests that the end-to-end tests run through
``conform42 run --tests``; they are not tests of this project, so this run does not collect them.
Targets for the end-to-end tests are real servers on loopback ports: the reference server (sim engine),
small deliberately broken FastAPI apps, and a socket that accepts and never answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.support.uvicorn_thread import serving

collect_ignore = ["fixtures"]

CONFORM42 = Path(sys.executable).parent / "conform42"


@pytest.fixture
def serve_app() -> Callable[[FastAPI], AbstractContextManager[str]]:
    """``with serve_app(app) as url:`` the app on a real loopback port (uvicorn in a thread)."""
    return serving


@pytest.fixture
def hanging_target() -> Iterator[str]:
    """A listening socket that accepts connections and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


RunConform42 = Callable[..., subprocess.CompletedProcess[str]]


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without the developer's own CONFORM42_* settings, which would change results."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFORM42_")}
    return {**clean, **(extra or {})}


@pytest.fixture
def run_conform42(tmp_path: Path) -> RunConform42:
    """Run ``conform42 ARGS`` from a scratch directory (not the checkout); bounded by ``timeout``."""

    def run(
        args: Sequence[str],
        *,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CONFORM42), *args],
            cwd=cwd or tmp_path,
            env=_clean_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run


RunPytest = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_pytest(tmp_path: Path) -> RunPytest:
    """``run_pytest(module_source, *args)``: write ``test_module.py`` into a scratch directory and run
    plain ``python -m pytest`` on it there (the conform42 plugin loads through its entry point)."""

    def run(source: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        (tmp_path / "test_module.py").write_text(source, encoding="utf-8")
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=tmp_path,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run
