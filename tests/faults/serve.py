"""``python -m tests.faults.serve --fault NAME``: the reference server on the sim engines, with one fault.

Built from the reference server's own parts (``create_app``, ``ServerConfig``, the sim engines, the demo
keys file), the named fault applied from outside (``catalogue.py``), served by uvicorn on 127.0.0.1.
``--fault none`` serves the clean reference, configured identically, so clean and faulty runs of the
suite differ by the fault alone.

The KV-cache budget defaults to the vLLM engine's measured one (46,592 tokens, README) rather than the
sim's "unknown", so a suite can reach a 503 on this server the same way it would on the real one.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from reference_server.app import create_app
from reference_server.auth import DEMO_KEYS, JWT_SECRET_ENV
from reference_server.cli_serve import serve_announced
from reference_server.config import DEMO_KEYS_FILE, ServerConfig
from reference_server.engines.sim import SimChatEngine, SimEmbedEngine
from tests.faults.catalogue import FAULTS, get

__all__ = ["DEFAULT_KV_BUDGET_TOKENS", "NONE", "build", "main", "serve_on_loopback"]

NONE = "none"
#: The vLLM chat engine's KV-cache capacity on this machine (README, "Tiers and limits").
DEFAULT_KV_BUDGET_TOKENS = 46_592

log = logging.getLogger("conform42.faults")


def build(
    fault: str = NONE,
    *,
    sim_token_delay: float = 0.0,
    data_dir: Path | None = None,
    kv_budget_tokens: int | None = DEFAULT_KV_BUDGET_TOKENS,
    jwt_secret: str | None = None,
    flavour: Literal["42ai", "fortytwo"] = "42ai",
) -> tuple[ASGIApp, FastAPI]:
    """The ASGI app to serve (the gateway with ``fault`` applied) and the gateway app underneath."""
    config = ServerConfig(
        flavour=flavour,
        keys_file=DEMO_KEYS_FILE,
        # Faults that re-sign tokens need the secret; the clean server gets one the same way.
        jwt_secret=jwt_secret or os.environ.get(JWT_SECRET_ENV) or secrets.token_urlsafe(32),
        kv_budget_tokens=kv_budget_tokens,
        data_dir=data_dir,  # None: a temporary folder per run
    )
    gateway_app = create_app(config, SimChatEngine(token_delay_s=sim_token_delay), SimEmbedEngine())
    app: ASGIApp = gateway_app if fault == NONE else get(fault).apply(gateway_app)
    return app, gateway_app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.serve",
        description="The reference server (sim engines) with one planted fault.",
    )
    parser.add_argument(
        "--fault",
        required=True,
        choices=[NONE, *sorted(FAULTS)],
        metavar="NAME",
        help=f"a fault of tests/faults/catalogue.py, or {NONE} for the clean server",
    )
    parser.add_argument(
        "--flavour",
        choices=("42ai", "fortytwo"),
        default="42ai",
        help="42ai: key -> task token exchange (default); fortytwo: the key is the bearer",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free one)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument(
        "--sim-token-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="sim engine: delay per generated token (default 0)",
    )
    parser.add_argument("--data-dir", type=Path, help="server state such as batches (default: a temp dir)")
    parser.add_argument(
        "--kv-budget-tokens",
        type=int,
        default=DEFAULT_KV_BUDGET_TOKENS,
        metavar="N",
        help=f"KV-cache budget for 503 admission (default {DEFAULT_KV_BUDGET_TOKENS})",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug")
    )
    return parser


def _announcement(banner: str, port: int) -> str:
    keys = [f"  {tier:<9} {key}" for tier, key in DEMO_KEYS.items()]
    return "\n".join([f"{banner} listening on http://127.0.0.1:{port}", *keys])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app, _ = build(
        args.fault,
        sim_token_delay=args.sim_token_delay,
        data_dir=args.data_dir,
        kv_budget_tokens=args.kv_budget_tokens,
        flavour=args.flavour,
    )
    banner = (
        f"conform42 reference server (sim) with planted fault {args.fault}"
        if args.fault != NONE
        else "conform42 reference server (sim), no fault"
    )
    return serve_on_loopback(
        app, args.port, args.port_file, args.log_level, functools.partial(_announcement, banner)
    )


def serve_on_loopback(
    app: ASGIApp, port: int, port_file: Path | None, log_level: str, announce: Callable[[int], str]
) -> int:
    """Serve ``app`` with uvicorn on 127.0.0.1 until stopped; the exit code (1: could not bind)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    try:
        # The same announcement as `conform42 serve`: the port file (written atomically) once listening.
        asyncio.run(serve_announced(uvicorn.Server(config), port_file, announce))
    except SystemExit as exc:  # uvicorn could not bind
        return int(exc.code or 1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
