"""``python -m tests.faults.liberties_serve --liberty NAME``: the reference server (sim) with one liberty.

The same server ``tests.faults.serve`` builds for the clean run (``build("none")``: the sim engines, the
demo keys, the vLLM-sized KV budget), with the named liberty applied from outside. A liberty that changes
only the path (an intermediary, a busy machine) serves the clean app: the proof sets up the path.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

from starlette.types import ASGIApp

from reference_server.auth import DEMO_KEYS
from tests.faults.liberties import LIBERTIES, get
from tests.faults.serve import DEFAULT_KV_BUDGET_TOKENS, NONE, build, serve_on_loopback

__all__ = ["build_liberty", "main"]


def build_liberty(name: str, **options: object) -> ASGIApp:
    """The clean sim server (``tests.faults.serve.build`` options) with liberty ``name`` applied."""
    _, gateway_app = build(NONE, **options)  # type: ignore[arg-type]
    return get(name).apply(gateway_app)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.liberties_serve",
        description="The reference server (sim engines) with one planted liberty.",
    )
    parser.add_argument("--liberty", required=True, choices=sorted(LIBERTIES), metavar="NAME")
    parser.add_argument("--flavour", choices=("42ai", "fortytwo"), default="42ai")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free one)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--sim-token-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--kv-budget-tokens", type=int, default=DEFAULT_KV_BUDGET_TOKENS, metavar="N")
    parser.add_argument("--log-level", default="warning")
    return parser


def _announcement(name: str, port: int) -> str:
    keys = [f"  {tier:<9} {key}" for tier, key in DEMO_KEYS.items()]
    banner = f"conform42 reference server (sim) with planted liberty {name}"
    return "\n".join([f"{banner} listening on http://127.0.0.1:{port}", *keys])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    app = build_liberty(
        args.liberty,
        sim_token_delay=args.sim_token_delay,
        kv_budget_tokens=args.kv_budget_tokens,
        flavour=args.flavour,
    )
    announce = functools.partial(_announcement, args.liberty)
    return serve_on_loopback(app, args.port, args.port_file, args.log_level, announce)


if __name__ == "__main__":
    sys.exit(main())
