"""How a vLLM server child is launched: its command line, its environment and its process set-up.

The environment encodes what vLLM needs on these CPU-only machines: offline hub, loopback-only
internal sockets, a fixed KV cache (the default memory check fails on this box's NUMA report), caches
kept inside the project, and Intel OpenMP preloaded.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

__all__ = ["Runner", "child_setup", "free_loopback_port", "vllm_command", "vllm_environment"]

Runner = Literal["generate", "pooling"]


def free_loopback_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1 (bind to port 0, read it, release it).

    There is a small window in which another process could take the port; vLLM then fails to bind and
    `wait_ready` reports that with the log tail rather than hanging.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def vllm_command(
    python: str, model: str, served_names: Sequence[str], port: int, runner: Runner, extra_args: Sequence[str]
) -> list[str]:
    """The argv that starts vLLM's OpenAI-compatible server for ``model`` on ``port``."""
    args = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        # One flag with every name: vLLM's argparse keeps only the last occurrence of a repeated flag.
        "--served-model-name",
        *served_names,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # A compiled start takes several times as long as an eager one, and vLLM 0.32 never reloads its
        # compile cache, so compiling would cost that at every start (docs/benchmarks.md).
        "--enforce-eager",
    ]
    if runner == "pooling":
        args += ["--runner", "pooling"]
    args += list(extra_args)
    return args


def _iomp_preload(prefix: Path) -> str | None:
    """Path of the Intel OpenMP runtime the `intel-openmp` wheel puts in `<venv>/lib`, if present.

    Preloading it (ahead of the GNU libgomp torch links) makes vLLM faster on these CPUs, most of all
    at high concurrency, with the same output (docs/benchmarks.md).
    """
    candidate = prefix / "lib" / "libiomp5.so"
    return str(candidate) if candidate.is_file() else None


def vllm_environment(
    cache_root: Path,
    tmp: Path,
    *,
    python: str,
    kv_cache_gib: int,
    preload_iomp: bool,
    overrides: Mapping[str, str],
) -> dict[str, str]:
    """The child's environment: this process's, plus what vLLM needs on these machines.

    ``cache_root`` receives vLLM's and torch inductor's caches; ``tmp`` becomes TMPDIR. ``overrides``
    win over everything computed here.
    """
    env = dict(os.environ)
    vllm_cache = cache_root / "vllm"
    inductor_cache = cache_root / "torchinductor"
    for folder in (vllm_cache, inductor_cache, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",  # models come from data wheels; never reach for a hub
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "VLLM_HOST_IP": "127.0.0.1",  # otherwise internal sockets bind a non-loopback address
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),  # GiB; the default memory probe fails here
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # two cores: don't keep one away from the engine
            "VLLM_CACHE_ROOT": str(vllm_cache),
            "TORCHINDUCTOR_CACHE_DIR": str(inductor_cache),
            "TMPDIR": str(tmp),
            "PYTHONUNBUFFERED": "1",  # log lines reach the file as they happen (readiness diagnostics)
        }
    )
    if preload_iomp:
        iomp = _iomp_preload(Path(python).parent.parent)  # <venv>/bin/python -> <venv>
        if iomp is None:
            iomp = _iomp_preload(Path(sys.prefix))
        if iomp is not None:
            # Intel OpenMP spins for 200 ms after each parallel region by default, keeping both cores
            # busy between steps, so the gateway's per-token wake-ups wait for a core. Not spinning
            # leaves vLLM's own speed as it was and brings the gateway closer to calling vLLM directly
            # (docs/benchmarks.md). setdefault: the caller's environment wins.
            env.setdefault("KMP_BLOCKTIME", "0")
            existing = env.get("LD_PRELOAD", "")
            if iomp not in existing.split(":"):
                env["LD_PRELOAD"] = f"{iomp}:{existing}" if existing else iomp
    env.update(overrides)
    return env


def child_setup(die_with_parent: bool, nice: int) -> Callable[[], None] | None:
    """A `preexec_fn` for the server: lower its scheduling priority, and on Linux make it receive SIGTERM
    when its parent thread dies. `None` when there is nothing to do.

    libc is loaded here, in the parent, so the forked child only makes plain system calls. The niceness
    is set before exec so every thread and process vLLM starts inherits it (on Linux niceness is per
    thread; setting it on the PID afterwards would reach the main thread only).
    """
    prctl: Callable[..., int] | None = None
    if die_with_parent and sys.platform.startswith("linux"):
        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None
    if prctl is None and nice == 0:
        return None
    pr_set_pdeathsig = 1

    def setup() -> None:
        if nice:
            os.nice(nice)
            # With autogroup scheduling (Linux's default on desktops and many VMs: a scheduling group
            # per session) niceness only ranks a session's own tasks, and vLLM runs in a session of
            # its own (start_new_session); the group's niceness is what ranks it against the gateway.
            with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as group:
                group.write(str(nice))
        if prctl is not None:
            prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)

    return setup
