"""Real vLLM engines for the tests that need them (marked ``vllm``): the chat model converted once, the
engines started side by side under ``reference_server.vllm_process.VllmProcess`` and always stopped.

The conversion runs in a child process: it imports torch and transformers, which would stay in the test
process's memory and may warn at import (pytest turns warnings into errors here).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reference_server.model_prep import chat_model_dir
from reference_server.vllm_process import VllmProcess
from tests.support.server_process import REPO_ROOT

__all__ = ["CACHE", "prepare_chat_model", "require_vllm", "running"]

#: The project's cache: converted models and vLLM's own caches, kept out of ~/.cache.
CACHE = REPO_ROOT / ".cache"


def require_vllm(how_to_install: str) -> None:
    """Skip the calling test or fixture when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip(f"vllm is not installed: {how_to_install}, then rerun")


def prepare_chat_model() -> Path:
    """The converted chat model's folder (converted once, about 20 s; a no-op when done)."""
    done = subprocess.run(
        [sys.executable, "-m", "reference_server.model_prep", "--cache-dir", str(CACHE / "models")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"model_prep failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")
    return chat_model_dir(CACHE / "models")


@contextmanager
def running(*engines: VllmProcess, deadline_s: float) -> Iterator[None]:
    """Start every engine (side by side, so their starts overlap), wait until each is healthy, and stop
    them all on the way out, whatever happened; after a clean exit none may still run."""
    try:
        for engine in engines:
            engine.start()
        for engine in engines:
            engine.wait_ready(deadline_s)
        yield
    finally:
        for engine in engines:
            engine.stop()
    assert not any(engine.is_running() for engine in engines)
