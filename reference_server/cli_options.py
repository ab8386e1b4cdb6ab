"""The options of ``python -m reference_server`` (``conform42 serve``) and how they are checked."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from reference_server.cli_output import EXIT_SETUP, Fatal
from reference_server.config import DEMO_KEYS_FILE
from reference_server.vllm_process import DEFAULT_ENGINE_NICE

__all__ = ["DEFAULT_JWT_SECRET_ENV", "build_parser", "jwt_secret"]

DEFAULT_JWT_SECRET_ENV = "CONFORM42_JWT_SECRET"


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
    parser.add_argument(
        "--engine",
        choices=("vllm", "sim"),
        default="vllm",
        help="vllm: real models on the CPU (default); sim: deterministic test double",
    )
    parser.add_argument(
        "--flavour",
        choices=("42ai", "fortytwo"),
        default="42ai",
        help="42ai: API key -> task token exchange (default); fortytwo: the API key is the bearer token",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8042, help="port (default 8042; 0 picks a free one)")
    parser.add_argument(
        "--port-file",
        type=Path,
        help="write the bound port to this file once listening (for tests and scripts)",
    )
    parser.add_argument(
        "--keys-file",
        type=Path,
        default=DEMO_KEYS_FILE,
        help="API keys (TOML, SHA-256 hashes); default: the bundled demo keys",
    )
    parser.add_argument(
        "--jwt-secret-env",
        metavar="NAME",
        help=f"read the task-token signing secret from environment variable NAME (default: "
        f"{DEFAULT_JWT_SECRET_ENV} if set, else a random secret per start)",
    )
    parser.add_argument(
        "--kv-budget-tokens",
        type=_positive_int,
        metavar="N",
        help="KV-cache budget for 503 admission instead of the engine's own capacity",
    )
    parser.add_argument("--image-dir", type=Path, help="folder whose images 42-vision requests may name")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="server state (batches.sqlite3), kept across restarts; one server per folder "
        "(default: a temporary folder, removed at exit)",
    )
    parser.add_argument(
        "--pipeline-dir", type=Path, help="extra pipeline templates (*.yaml) besides the bundled ones"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".cache"),
        help="converted models, vLLM caches and engine logs (default ./.cache)",
    )
    parser.add_argument(
        "--sim-token-delay",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="sim engine: delay per generated token (default 0)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=_non_negative_float,
        default=300.0,
        metavar="SECONDS",
        help="how long the vLLM engines may take to become ready (default 300)",
    )
    parser.add_argument(
        "--chat-engine-url",
        metavar="URL",
        help="use an already running vLLM chat server (serving the 42 chat IDs) instead of starting one",
    )
    parser.add_argument(
        "--embed-engine-url",
        metavar="URL",
        help="use an already running vLLM embedding server (serving 42-embed) instead of starting one",
    )
    parser.add_argument(
        "--engine-nice",
        type=_nice,
        default=DEFAULT_ENGINE_NICE,
        metavar="N",
        help=f"niceness (0-19) of the vLLM engines this server starts, so the gateway's "
        f"short, latency-bound work runs before theirs (default {DEFAULT_ENGINE_NICE})",
    )
    parser.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="log level (default info)",
    )
    return parser


def jwt_secret(name: str | None) -> str | None:
    """The task-token secret ``--jwt-secret-env NAME`` names (or the default variable's), or None."""
    if name is None:
        return os.environ.get(DEFAULT_JWT_SECRET_ENV) or None
    value = os.environ.get(name)
    if not value:
        raise Fatal(EXIT_SETUP, f"--jwt-secret-env {name}: the environment variable {name} is not set")
    return value
