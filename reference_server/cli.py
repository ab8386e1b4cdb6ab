"""``python -m reference_server``: start the engines, then serve the gateway until told to stop.

With ``--engine vllm`` (the default) this process supervises two vLLM servers, one for chat (SmolLM2,
served under every 42 chat model ID) and one for embeddings (all-MiniLM-L6-v2 as ``42-embed``), and the
gateway talks to them over loopback HTTP. ``--engine sim`` runs the in-process test double instead.

Exit codes: 0 after SIGINT/SIGTERM (a requested stop), 1 when an engine fails to start or dies while
serving (or the port cannot be bound), 2 for a setup problem the message explains (vLLM or the model
wheels missing, a bad option).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

from reference_server.access_log import ACCESS_LOGGER
from reference_server.app import create_app
from reference_server.auth import DEMO_KEYS, Authenticator
from reference_server.batch import DataDirBusy, DataDirLock
from reference_server.config import DEMO_KEYS_FILE, ServerConfig
from reference_server.engines.sim import SimChatEngine, SimEmbedEngine
from reference_server.engines.vllm import (
    CHAT_SERVED_NAMES,
    EMBED_SERVED_NAME,
    VllmChatEngine,
    VllmEmbedEngine,
)
from reference_server.model_prep import INSTALL_HINT, ModelNotAvailable, find_minilm_dir, prepare_chat_model
from reference_server.pipeline import TemplateError, load_templates
from reference_server.vllm_kv import read_kv_cache_tokens
from reference_server.vllm_process import DEFAULT_ENGINE_NICE, VllmProcess, VllmStartError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from reference_server.engines.base import ChatEngine, EmbedEngine

__all__ = ["DEFAULT_JWT_SECRET_ENV", "build_parser", "main"]

log = logging.getLogger("conform42.server")

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2
DEFAULT_JWT_SECRET_ENV = "CONFORM42_JWT_SECRET"
CHAT_MODEL_LABEL = "SmolLM2-135M-Instruct"
EMBED_MODEL_LABEL = "all-MiniLM-L6-v2"
#: The chat engine's context when it cannot be read from vLLM: what DEFAULT_CHAT_ARGS asks for.
FALLBACK_MAX_MODEL_LEN = 2048
#: In-flight requests get this long to finish after a stop signal before uvicorn cancels them; a
#: generation may run for minutes, and a stop must not wait for that.
GRACEFUL_SHUTDOWN_S = 10
WATCHDOG_INTERVAL_S = 1.0


def _install_hint() -> str:
    python = sys.executable
    return (
        "vLLM is not installed in this Python environment "
        f"({python}).\n"
        "Install it (about 90 s, 3.7 GB) with:\n"
        "    make vllm\n"
        "or by hand:\n"
        f"    {python} -m pip install -e '.[vllm]'\n"
        f"    {python} -m pip {INSTALL_HINT.removeprefix('pip ')}\n"
        f"    {python} -m pip uninstall -y torchvision torchaudio torchcodec\n"
        "or try the gateway without a model: python -m reference_server --engine sim"
    )


class _Fatal(Exception):
    """Stop with this exit code and message (printed to stderr, no traceback)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Interrupted(Exception):
    """SIGINT or SIGTERM arrived before the server was listening."""


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    # Engine shutdown is bounded (SIGTERM, 15 s, SIGKILL); a second Ctrl-C must not abandon it half-way
    # and leave a multi-GB vLLM process behind.
    log.warning("%s received: already stopping, please wait", signal.Signals(signum).name)


def _say(message: str) -> None:
    """A progress line for the person who started the server (stdout, unbuffered)."""
    print(f"conform42: {message}", flush=True)


# ---------------------------------------------------------------------------------------------- options


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, not {text}")
    return value


def _nice(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 19:
        raise argparse.ArgumentTypeError(f"must be 0..19, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference_server",
        description="The conform42 reference server: both 42 APIs over real vLLM engines (or the sim "
                    "test double).",
    )
    parser.add_argument("--engine", choices=("vllm", "sim"), default="vllm",
                        help="vllm: real models on the CPU (default); sim: deterministic test double")
    parser.add_argument("--flavour", choices=("42ai", "fortytwo"), default="42ai",
                        help="42ai: API key -> task token exchange (default); fortytwo: the API key is the "
                             "bearer token")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8042, help="port (default 8042; 0 picks a free one)")
    parser.add_argument("--port-file", type=Path,
                        help="write the bound port to this file once listening (for tests and scripts)")
    parser.add_argument("--keys-file", type=Path, default=DEMO_KEYS_FILE,
                        help="API keys (TOML, SHA-256 hashes); default: the bundled demo keys")
    parser.add_argument("--jwt-secret-env", metavar="NAME",
                        help=f"read the task-token signing secret from environment variable NAME (default: "
                             f"{DEFAULT_JWT_SECRET_ENV} if set, else a random secret per start)")
    parser.add_argument("--kv-budget-tokens", type=_positive_int, metavar="N",
                        help="KV-cache budget for 503 admission instead of the engine's own capacity")
    parser.add_argument("--image-dir", type=Path, help="folder whose images 42-vision requests may name")
    parser.add_argument("--data-dir", type=Path,
                        help="server state (batches.sqlite3), kept across restarts; one server per folder "
                             "(default: a temporary folder, removed at exit)")
    parser.add_argument("--pipeline-dir", type=Path,
                        help="extra pipeline templates (*.yaml) besides the bundled ones")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"),
                        help="converted models, vLLM caches and engine logs (default ./.cache)")
    parser.add_argument("--sim-token-delay", type=_non_negative_float, default=0.0, metavar="SECONDS",
                        help="sim engine: delay per generated token (default 0)")
    parser.add_argument("--startup-timeout", type=_non_negative_float, default=300.0, metavar="SECONDS",
                        help="how long the vLLM engines may take to become ready (default 300)")
    parser.add_argument("--chat-engine-url", metavar="URL",
                        help="use an already running vLLM chat server (serving the 42 chat IDs) instead of "
                             "starting one")
    parser.add_argument("--embed-engine-url", metavar="URL",
                        help="use an already running vLLM embedding server (serving 42-embed) instead of "
                             "starting one")
    parser.add_argument("--engine-nice", type=_nice, default=DEFAULT_ENGINE_NICE, metavar="N",
                        help=f"niceness (0-19) of the vLLM engines this server starts, so the gateway's "
                             f"short, latency-bound work runs before theirs (default {DEFAULT_ENGINE_NICE})")
    parser.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"),
                        default="info", help="log level (default info)")
    return parser


def _configure_logging(level: str) -> None:
    """Plain lines on stderr; access-log records are already JSON, so they get the message only."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger(ACCESS_LOGGER)
    access_handler = logging.StreamHandler(sys.stderr)
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    access.handlers[:] = [access_handler]
    access.propagate = False
    # httpx logs every request to vLLM at INFO: noise, and formatting it costs time on the hot path.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _jwt_secret(name: str | None) -> str | None:
    if name is None:
        return os.environ.get(DEFAULT_JWT_SECRET_ENV) or None
    value = os.environ.get(name)
    if not value:
        raise _Fatal(EXIT_SETUP, f"--jwt-secret-env {name}: the environment variable {name} is not set")
    return value


# ----------------------------------------------------------------------------------------------- engines


@dataclass
class _Engines:
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


def _sim_engines(args: argparse.Namespace, engines: _Engines) -> tuple[ChatEngine, EmbedEngine]:
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


def _vllm_engines(args: argparse.Namespace, engines: _Engines) -> tuple[ChatEngine, EmbedEngine]:
    attached = args.chat_engine_url is not None and args.embed_engine_url is not None
    if not attached and importlib.util.find_spec("vllm") is None:
        raise _Fatal(EXIT_SETUP, _install_hint())
    cache: Path = args.cache_dir.resolve()
    try:
        embed_dir = find_minilm_dir() if args.embed_engine_url is None else None
        # The tokenizer always comes from here, also for an attached chat server: the gateway counts
        # prompt tokens itself (context-length and KV admission happen before vLLM sees a request).
        chat_dir = prepare_chat_model(cache / "models", progress=_say)  # says so when it converts
        _say(f"chat model ({CHAT_MODEL_LABEL}): {chat_dir}")
    except ModelNotAvailable as exc:
        raise _Fatal(EXIT_SETUP, f"{exc}\nThe `make vllm` target installs everything needed.") from exc

    started = time.monotonic()
    logs = cache / "logs"
    chat_proc: VllmProcess | None = None
    embed_proc: VllmProcess | None = None
    if args.chat_engine_url is None:
        chat_proc = VllmProcess(
            # Every chat ID is a served name (vLLM accepts each); the first is the one vLLM echoes.
            chat_dir, CHAT_SERVED_NAMES, runner="generate",
            cache_root=cache / "vllm-run", log_file=logs / f"vllm-chat-{os.getpid()}.log",
            # start() runs on the main thread, which lives as long as the server: if this process is
            # SIGKILLed, the kernel still SIGTERMs the 3.6 GB engine.
            die_with_parent=True, nice=args.engine_nice,
        )
        engines.procs.append(("chat", chat_proc))
        _say(f"starting vLLM chat engine ({CHAT_MODEL_LABEL}) ...")
        chat_proc.start()
    if embed_dir is not None:
        embed_proc = VllmProcess(
            embed_dir, EMBED_SERVED_NAME, runner="pooling", cache_root=cache / "vllm-run",
            log_file=logs / f"vllm-embed-{os.getpid()}.log", die_with_parent=True, nice=args.engine_nice,
        )
        engines.procs.append(("embedding", embed_proc))
        _say(f"starting vLLM embedding engine ({EMBED_MODEL_LABEL}) ...")
        embed_proc.start()

    # Both engines start side by side; load the tokenizer (a few seconds, mostly importing transformers)
    # meanwhile. Context length and KV capacity are only known once the chat engine is up.
    chat_url = args.chat_engine_url or (chat_proc.base_url if chat_proc else "")
    chat = VllmChatEngine(chat_url, CHAT_SERVED_NAMES, chat_dir, FALLBACK_MAX_MODEL_LEN, None,
                          is_alive=chat_proc.is_running if chat_proc else None)
    embed_url = args.embed_engine_url or (embed_proc.base_url if embed_proc else "")
    embed = VllmEmbedEngine(embed_url, is_alive=embed_proc.is_running if embed_proc else None)

    deadline = started + args.startup_timeout
    for label, proc in engines.procs:
        try:
            seconds = proc.wait_ready(max(1.0, deadline - time.monotonic()))
        except VllmStartError as exc:
            raise _Fatal(EXIT_FAILED, f"the vLLM {label} engine did not start: {exc}") from exc
        _say(f"vLLM {label} engine ready in {seconds:.1f} s")

    try:
        names, chat.max_model_len = _served_chat_model(chat_url)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise _Fatal(EXIT_FAILED, f"cannot list the models of the chat engine at {chat_url}: {exc}") from exc
    missing = [n for n in CHAT_SERVED_NAMES if n not in names]
    if missing:
        raise _Fatal(EXIT_SETUP, f"the chat engine at {chat_url} does not serve {', '.join(missing)} "
                                 f"(it serves {', '.join(names) or 'nothing'}); start it with "
                                 f"--served-model-name {' '.join(CHAT_SERVED_NAMES)}")
    # Rebuilt with vLLM's own order: its first name is the one written into answers.
    chat.set_served_names(names)
    chat.kv_budget_tokens = read_kv_cache_tokens(chat_url, chat_proc.log_file if chat_proc else None)
    kv = f"{chat.kv_budget_tokens} tokens" if chat.kv_budget_tokens is not None else "unknown (no 503 check)"
    _say(f"engines ready in {time.monotonic() - started:.1f} s; context {chat.max_model_len} tokens, "
         f"KV cache {kv}")
    engines.description = (f"vllm: chat {CHAT_MODEL_LABEL} at {chat_url}, embeddings {EMBED_MODEL_LABEL} "
                           f"at {embed_url}")
    return chat, embed


# ------------------------------------------------------------------------------------------------ server


class _Server(uvicorn.Server):
    """uvicorn's server, minus its habit of re-raising the stop signal after shutdown.

    uvicorn re-sends a captured SIGTERM to itself once it has shut down, which would kill this process
    with -15 before the engines are stopped. Here a signal only asks for a graceful stop (a second one
    forces it), and the caller stops the engines and exits 0.
    """

    stop_signal: str | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        def handle(signum: int, _frame: FrameType | None) -> None:
            self.stop_signal = signal.Signals(signum).name
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _bound_port(server: uvicorn.Server) -> int:
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


def _write_port_file(path: Path, port: int) -> None:
    # Written whole and renamed into place, so a poller never reads a half-written number.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


def _banner(host: str, port: int, config: ServerConfig, engines: _Engines) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    flavour = ("42ai (exchange an API key for a task token: POST /api/token)" if config.flavour == "42ai"
               else "fortytwo (the API key is the bearer token)")
    lines = [
        f"conform42 reference server listening on http://{shown_host}:{port}",
        f"  flavour: {flavour}",
        f"  engine:  {engines.description}",
    ]
    if config.keys_file.resolve() == DEMO_KEYS_FILE.resolve():
        lines.append("  demo API keys (NOT secret, for local use only):")
        lines += [f"    {tier:<9} {key}" for tier, key in DEMO_KEYS.items()]
    return "\n".join(lines)


async def _watchdog(server: uvicorn.Server, engines: _Engines, outcome: list[int]) -> None:
    """Stop serving (exit 1) as soon as an engine process dies: every request would fail from then on."""
    while True:
        await asyncio.sleep(WATCHDOG_INTERVAL_S)
        for label, proc in engines.procs:
            if proc.is_running():
                continue
            # stop() reaps what is left of its process group and returns the exit code.
            code = await asyncio.to_thread(proc.stop)
            log.error("the vLLM %s engine exited unexpectedly (exit code %s); shutting down. Last lines of "
                      "%s:\n%s", label, code, proc.log_file, proc.log_tail())
            outcome.append(EXIT_FAILED)
            server.should_exit = True
            return


async def _announce(server: uvicorn.Server, port_file: Path | None, banner: Callable[[int], str]) -> None:
    while not server.started:
        await asyncio.sleep(0.02)
    port = _bound_port(server)
    if port_file is not None:
        _write_port_file(port_file, port)
    print(banner(port), flush=True)


async def _serve(
    server: _Server,
    chat: ChatEngine,
    embed: EmbedEngine,
    engines: _Engines,
    port_file: Path | None,
    banner: Callable[[int], str],
) -> int:
    outcome: list[int] = []
    helpers = [asyncio.create_task(_announce(server, port_file, banner)),
               asyncio.create_task(_watchdog(server, engines, outcome))]
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits this way when it cannot bind the port or the app's startup fails; it has logged why.
        log.error("the HTTP server could not start (exit %s)", exc.code)
        outcome.append(EXIT_FAILED)
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await chat.aclose()
        await embed.aclose()
    if server.stop_signal is not None:
        log.info("%s received: stopped serving", server.stop_signal)
    return outcome[0] if outcome else EXIT_OK


def _run_server(app: FastAPI, args: argparse.Namespace, config: ServerConfig, chat: ChatEngine,
                embed: EmbedEngine, engines: _Engines) -> int:
    uv_config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, lifespan="on",
        # Logging is configured once, above; uvicorn's own dictConfig would replace those handlers.
        log_config=None, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(uv_config)
    # uvicorn >= 0.36 picks uvloop when installed (faster streaming); older ones leave the default loop.
    loop_factory = getattr(uv_config, "get_loop_factory", lambda: None)()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve(server, chat, embed, engines, args.port_file,
                                 lambda port: _banner(args.host, port, config, engines)))


# -------------------------------------------------------------------------------------------------- main


def _main(args: argparse.Namespace, engines: _Engines) -> int:
    secret = _jwt_secret(args.jwt_secret_env)
    if not args.keys_file.is_file():
        raise _Fatal(EXIT_SETUP, f"--keys-file {args.keys_file}: no such file")
    if args.image_dir is not None and not args.image_dir.is_dir():
        raise _Fatal(EXIT_SETUP, f"--image-dir {args.image_dir}: no such folder")
    config = ServerConfig(
        flavour=args.flavour,
        keys_file=args.keys_file,
        jwt_secret=secret,
        kv_budget_tokens=args.kv_budget_tokens,
        image_dir=args.image_dir,
        # No default folder: one server may hold a data dir at a time, and servers started side by side
        # from one checkout (tests, the suite's own) must not collide on a shared default.
        data_dir=args.data_dir,
        pipeline_dir=args.pipeline_dir,
    )
    try:
        # Checked before any engine starts: a bad keys file or a short secret should cost a second, not
        # a 40 s vLLM start followed by a stop.
        Authenticator.from_config(config)
    except ValueError as exc:
        raise _Fatal(EXIT_SETUP, str(exc)) from exc
    try:
        # create_app loads them again; checking here makes a broken template cost a second, not 40.
        load_templates(config.pipeline_dir)
    except TemplateError as exc:
        raise _Fatal(EXIT_SETUP, str(exc)) from exc
    if config.data_dir is not None:
        try:
            # The app takes the data directory for good at start-up; a second server on it must learn
            # that now, not after a 40 s engine start.
            DataDirLock.check(config.data_dir)
        except (DataDirBusy, OSError) as exc:
            raise _Fatal(EXIT_SETUP, f"--data-dir {config.data_dir}: {exc}") from exc
    if args.engine == "sim":
        chat, embed = _sim_engines(args, engines)
    else:
        chat, embed = _vllm_engines(args, engines)
    app = create_app(config, chat, embed)
    return _run_server(app, args, config, chat, embed, engines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level)
    engines = _Engines()
    # Until uvicorn takes over the signals, a stop request unwinds start-up through the finally below,
    # so engines that are half-way up are stopped too.
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = EXIT_FAILED
    try:
        code = _main(args, engines)
    except _Interrupted as exc:
        _say(f"{exc} received during start-up: stopping")
        code = EXIT_OK
    except _Fatal as exc:
        print(f"conform42: {exc.message}", file=sys.stderr, flush=True)
        code = exc.code
    finally:
        for sig in previous:
            signal.signal(sig, _already_stopping)
        if engines.procs:
            _say("stopping the vLLM engines ...")
            engines.stop()
            if code == EXIT_OK:
                engines.remove_logs()  # kept after a failure: their path was printed with the error
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
