"""Serving the gateway with uvicorn: the port announcement, the engine watchdog and the stop signals.

A stop signal (SIGINT/SIGTERM) asks uvicorn for a graceful stop; in-flight requests get
GRACEFUL_SHUTDOWN_S to finish. An engine process that dies ends serving with exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Generator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from reference_server.auth import DEMO_KEYS
from reference_server.cli_engines import StartedEngines
from reference_server.cli_output import EXIT_FAILED, EXIT_OK
from reference_server.config import DEMO_KEYS_FILE, ServerConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from reference_server.engines.base import ChatEngine, EmbedEngine

__all__ = ["bound_port", "run_server", "serve_announced", "write_port_file"]

log = logging.getLogger("conform42.server")

#: In-flight requests get this long to finish after a stop signal before uvicorn cancels them; a
#: generation may run for minutes, and a stop must not wait for that.
GRACEFUL_SHUTDOWN_S = 10
WATCHDOG_INTERVAL_S = 1.0


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


def bound_port(server: uvicorn.Server) -> int:
    """The port ``server`` listens on (its first socket); only once ``server.started``."""
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


def write_port_file(path: Path, port: int) -> None:
    """Write ``port`` to ``path`` for a parent process or script that polls for it."""
    # Written whole and renamed into place, so a poller never reads a half-written number.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


def _banner(host: str, port: int, config: ServerConfig, engines: StartedEngines) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    flavour = (
        "42ai (exchange an API key for a task token: POST /api/token)"
        if config.flavour == "42ai"
        else "fortytwo (the API key is the bearer token)"
    )
    lines = [
        f"conform42 reference server listening on http://{shown_host}:{port}",
        f"  flavour: {flavour}",
        f"  engine:  {engines.description}",
    ]
    if config.keys_file.resolve() == DEMO_KEYS_FILE.resolve():
        lines.append("  demo API keys (NOT secret, for local use only):")
        lines += [f"    {tier:<9} {key}" for tier, key in DEMO_KEYS.items()]
    return "\n".join(lines)


async def _watchdog(server: uvicorn.Server, engines: StartedEngines, outcome: list[int]) -> None:
    """Stop serving (exit 1) as soon as an engine process dies: every request would fail from then on."""
    while True:
        await asyncio.sleep(WATCHDOG_INTERVAL_S)
        for label, proc in engines.procs:
            if proc.is_running():
                continue
            # stop() reaps what is left of its process group and returns the exit code.
            code = await asyncio.to_thread(proc.stop)
            log.error(
                "the vLLM %s engine exited unexpectedly (exit code %s); shutting down. Last lines of %s:\n%s",
                label,
                code,
                proc.log_file,
                proc.log_tail(),
            )
            outcome.append(EXIT_FAILED)
            server.should_exit = True
            return


async def _announce(server: uvicorn.Server, port_file: Path | None, banner: Callable[[int], str]) -> None:
    while not server.started:
        await asyncio.sleep(0.02)
    port = bound_port(server)
    if port_file is not None:
        write_port_file(port_file, port)
    print(banner(port), flush=True)


async def serve_announced(
    server: uvicorn.Server, port_file: Path | None, banner: Callable[[int], str]
) -> None:
    """``server.serve()``; once it listens, the bound port goes to ``port_file`` and ``banner(port)`` to
    stdout, so a parent process or a person learns where it listens only when it does."""
    announcer = asyncio.create_task(_announce(server, port_file, banner))
    try:
        await server.serve()
    finally:
        announcer.cancel()
        await asyncio.gather(announcer, return_exceptions=True)


async def _serve(
    server: _Server,
    chat: ChatEngine,
    embed: EmbedEngine,
    engines: StartedEngines,
    port_file: Path | None,
    banner: Callable[[int], str],
) -> int:
    outcome: list[int] = []
    watchdog = asyncio.create_task(_watchdog(server, engines, outcome))
    try:
        await serve_announced(server, port_file, banner)
    except SystemExit as exc:
        # uvicorn exits this way when it cannot bind the port or the app's startup fails; it has logged why.
        log.error("the HTTP server could not start (exit %s)", exc.code)
        outcome.append(EXIT_FAILED)
    finally:
        watchdog.cancel()
        await asyncio.gather(watchdog, return_exceptions=True)
        await chat.aclose()
        await embed.aclose()
    if server.stop_signal is not None:
        log.info("%s received: stopped serving", server.stop_signal)
    return outcome[0] if outcome else EXIT_OK


def run_server(
    app: FastAPI,
    args: argparse.Namespace,
    config: ServerConfig,
    chat: ChatEngine,
    embed: EmbedEngine,
    engines: StartedEngines,
) -> int:
    """Serve ``app`` as the options say until a stop signal or an engine's death; the exit code."""
    uv_config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        # Logging is configured once, by the CLI; uvicorn's own dictConfig would replace those handlers.
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(uv_config)
    # uvicorn >= 0.36 picks uvloop when installed (faster streaming); older ones leave the default loop.
    loop_factory = getattr(uv_config, "get_loop_factory", lambda: None)()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(
            _serve(
                server,
                chat,
                embed,
                engines,
                args.port_file,
                lambda port: _banner(args.host, port, config, engines),
            )
        )
