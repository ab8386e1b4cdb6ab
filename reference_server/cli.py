"""``python -m reference_server``: start the engines, then serve the gateway until told to stop.

The steps live in their own modules: the options (cli_options.py), the engines' start-up
(cli_engines.py) and serving with uvicorn (cli_serve.py); exit codes and messages in cli_output.py.
Here they are put in order, and a stop request during start-up still stops what has started.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from reference_server.access_log import ACCESS_LOGGER
from reference_server.app import create_app
from reference_server.auth import Authenticator
from reference_server.batch import DataDirBusy, DataDirLock
from reference_server.cli_engines import StartedEngines, start_sim_engines, start_vllm_engines
from reference_server.cli_options import build_parser, jwt_secret
from reference_server.cli_output import EXIT_FAILED, EXIT_OK, EXIT_SETUP, Fatal, say
from reference_server.cli_serve import run_server
from reference_server.config import ServerConfig
from reference_server.pipeline import TemplateError, load_templates

__all__ = ["main"]

log = logging.getLogger("conform42.server")


class _Interrupted(Exception):
    """SIGINT or SIGTERM arrived before the server was listening."""


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    # Engine shutdown is bounded (SIGTERM, 15 s, SIGKILL); a second Ctrl-C must not abandon it half-way
    # and leave a multi-GB vLLM process behind.
    log.warning("%s received: already stopping, please wait", signal.Signals(signum).name)


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


def _main(args: argparse.Namespace, engines: StartedEngines) -> int:
    secret = jwt_secret(args.jwt_secret_env)
    if not args.keys_file.is_file():
        raise Fatal(EXIT_SETUP, f"--keys-file {args.keys_file}: no such file")
    if args.image_dir is not None and not args.image_dir.is_dir():
        raise Fatal(EXIT_SETUP, f"--image-dir {args.image_dir}: no such folder")
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
        raise Fatal(EXIT_SETUP, str(exc)) from exc
    try:
        # create_app loads them again; checking here makes a broken template cost a second, not 40.
        load_templates(config.pipeline_dir)
    except TemplateError as exc:
        raise Fatal(EXIT_SETUP, str(exc)) from exc
    if config.data_dir is not None:
        try:
            # The app takes the data directory for good at start-up; a second server on it must learn
            # that now, not after a 40 s engine start.
            DataDirLock.check(config.data_dir)
        except (DataDirBusy, OSError) as exc:
            raise Fatal(EXIT_SETUP, f"--data-dir {config.data_dir}: {exc}") from exc
    if args.engine == "sim":
        chat, embed = start_sim_engines(args, engines)
    else:
        chat, embed = start_vllm_engines(args, engines)
    app = create_app(config, chat, embed)
    return run_server(app, args, config, chat, embed, engines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level)
    engines = StartedEngines()
    # Until uvicorn takes over the signals, a stop request unwinds start-up through the finally below,
    # so engines that are half-way up are stopped too.
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = EXIT_FAILED
    try:
        code = _main(args, engines)
    except _Interrupted as exc:
        say(f"{exc} received during start-up: stopping")
        code = EXIT_OK
    except Fatal as exc:
        print(f"conform42: {exc.message}", file=sys.stderr, flush=True)
        code = exc.code
    finally:
        for sig in previous:
            signal.signal(sig, _already_stopping)
        if engines.procs:
            say("stopping the vLLM engines ...")
            engines.stop()
            if code == EXIT_OK:
                engines.remove_logs()  # kept after a failure: their path was printed with the error
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
