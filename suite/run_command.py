"""``conform42 run``: the behaviour suite under pytest, in a child process, with conform42's output.

It runs ``python -m pytest --pyargs suite.conformance`` with a bundled, empty ini file (``-c``), its own
rootdir and confcutdir, so the settings of whatever project the user stands in (``testpaths``,
``filterwarnings = error``, ``addopts``, conftest files above the suite) never leak in: the run behaves
the same from any working directory. API keys reach the child through environment variables, never its
command line (which other users of the machine can read).

Exit codes: 0 conformant, 1 non-conformant, 2 usage error, unreachable target or inconclusive.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from suite.catalogue import CatalogueError
from suite.config import ENGINES, LEVEL_NAMES, ConfigError, resolve_settings
from suite.outcomes import EXIT_SUITE_ERROR
from suite.selection import SelectionError, parse_filter
from suite.target import PROFILE_NAMES, TIERS

__all__ = ["CONFORMANCE_PACKAGE", "add_run_parser", "build_pytest_command", "run"]

CONFORMANCE_PACKAGE = "suite.conformance"
DEFAULT_TEST_TIMEOUT_S = 120.0
DEFAULT_SESSION_TIMEOUT_S = 3600.0
# The child gets this long beyond its own session watchdog (reference start-up, report writing).
_CHILD_MARGIN_S = 600.0
_INI = "[pytest]\n# conform42 run: deliberately empty, so no project's pytest settings apply.\n"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def add_run_parser(commands: Any) -> None:
    """Add ``run`` to the ``conform42`` sub-command parsers."""
    run_parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run the conformance suite against a target (default: the bundled reference server)",
        description="Run the conformance suite. Without --target the bundled reference server is started. "
                    "Exit codes: 0 conformant, 1 non-conformant, 2 usage error, unreachable target or "
                    "inconclusive. Arguments after `--` go to pytest.",
    )
    add = run_parser.add_argument
    add("--target", metavar="URL", help="base URL of the server under test (env CONFORM42_TARGET)")
    add("--token-url", metavar="URL",
        help="where POST /api/token lives if not on the target: the host's base URL or the full "
             "endpoint (https://HOST/api/token) (env CONFORM42_TOKEN_URL)")
    add("--profile", choices=PROFILE_NAMES, help="API the target implements (default 42ai)")
    for tier in TIERS:
        add(f"--key-{tier}", metavar="KEY",
            help=f"API key of the {tier} tier (better: env CONFORM42_KEY_{tier.upper()}); "
                 "without it the tier's tests are Disabled")
    add("--level", type=str.lower, choices=LEVEL_NAMES,
        help="run requirements of this level and stronger (default may: all)")
    add("--gate", type=str.lower, choices=LEVEL_NAMES,
        help="failures of this level and stronger make the run NON-CONFORMANT (default must)")
    add("--requirements", "-k", metavar="EXPR", help='which requirements, e.g. "AUTH or STREAM-003"')
    add("--report", metavar="DIR", help="write junit.xml, results.json and report.html into DIR")
    add("--timeout", type=_positive, metavar="S", help="seconds a request may take (default 30)")
    add("--test-timeout", type=_positive, default=DEFAULT_TEST_TIMEOUT_S, metavar="S",
        help=f"seconds a test may take; a test over it fails (default {DEFAULT_TEST_TIMEOUT_S:g})")
    add("--session-timeout", type=_positive, default=DEFAULT_SESSION_TIMEOUT_S, metavar="S",
        help=f"seconds the whole run may take (default {DEFAULT_SESSION_TIMEOUT_S:g})")
    add("--chat-model", metavar="ID", help="chat model (default 42-general; fortytwo: discovered)")
    add("--embed-model", metavar="ID", help="embedding model (default 42-embed; fortytwo: discovered)")
    add("--reference-engine", choices=ENGINES,
        help="engine of the bundled reference server when no --target (default vllm)")
    add("--image-url", metavar="URL",
        help="image the vision and pipeline tests send: data:, http:// or https:// (env "
             "CONFORM42_IMAGE_URL; default a small PNG as a data: URL)")
    add("--accept-skip", action="append", metavar="ID",
        help="a requirement whose Skip the verdict accepts (repeatable or comma-separated; env "
             "CONFORM42_ACCEPT_SKIP)")
    add("--config", metavar="FILE", help="settings file (default ./conform42.toml if present)")
    add("-x", "--exitfirst", action="store_true", help="stop after the first failing test")
    add("--maxfail", type=int, metavar="N", help="stop after N failing tests")
    add("-v", "--verbose", action="count", default=0, help="list every test (-vv: with tracebacks)")
    add("--tests", nargs="+", metavar="PATH", help=argparse.SUPPRESS)  # suite development: other tests
    run_parser.set_defaults(handler=run)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the test package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def build_pytest_command(args: argparse.Namespace, ini: Path) -> list[str]:
    """The child's command line (no secrets: keys travel in the environment)."""
    if args.tests:
        paths = [str(Path(p).resolve()) for p in args.tests]
        base = Path(os.path.commonpath([p if Path(p).is_dir() else str(Path(p).parent) for p in paths]))
        selection = paths
    else:
        base = _package_dir(CONFORMANCE_PACKAGE)
        selection = ["--pyargs", CONFORMANCE_PACKAGE]
    command = [sys.executable, "-m", "pytest", *selection,
               "-c", str(ini), "--rootdir", str(base), "--confcutdir", str(base),
               "-p", "no:cacheprovider", "--disable-warnings", "-rN", "-o", "console_output_style=classic",
               "-o", f"timeout={args.test_timeout:g}", "--session-timeout", f"{args.session_timeout:g}"]
    command += ["-v"] * args.verbose if args.verbose else ["-qq", "--conform42-compact"]
    command.append("--tb=short" if args.verbose > 1 else "--tb=no")
    if args.exitfirst:
        command.append("-x")
    if args.maxfail is not None:
        command += ["--maxfail", str(args.maxfail)]
    options = {"--target": args.target, "--token-url": args.token_url, "--profile": args.profile,
               "--level": args.level, "--gate": args.gate, "--requirements": args.requirements,
               "--report": args.report,
               "--request-timeout": args.timeout, "--chat-model": args.chat_model,
               "--embed-model": args.embed_model, "--reference-engine": args.reference_engine,
               "--image-url": args.image_url,
               "--conform42-config": str(Path(args.config).resolve()) if args.config else None}
    for option, value in options.items():
        if value is not None:
            command += [option, str(value)]
    for requirement_id in args.accept_skip or ():
        command += ["--accept-skip", requirement_id]
    return [*command, *getattr(args, "pytest_args", [])]


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    for tier in TIERS:
        key = getattr(args, f"key_{tier}")
        if key:
            env[f"CONFORM42_KEY_{tier.upper()}"] = key
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _validate(args: argparse.Namespace) -> None:
    """Fail before starting anything when the settings or the expression are wrong (one line, exit 2).

    The plugin resolves the same settings again in the child; checking here first keeps a usage error
    to one line, without pytest's start-up around it. URLs, the image URL and the accepted skips are
    checked by ``resolve_settings`` itself, so plain ``pytest`` gets the same checks.
    """
    cli = {"target": args.target, "token_url": args.token_url, "profile": args.profile, "level": args.level,
           "gate": args.gate,
           "requirements": args.requirements, "report_dir": args.report, "request_timeout": args.timeout,
           "chat_model": args.chat_model, "embed_model": args.embed_model,
           "reference_engine": args.reference_engine, "config": args.config,
           "image_url": args.image_url, "accept_skip": args.accept_skip}
    cli.update({f"key_{t}": getattr(args, f"key_{t}") for t in TIERS})
    settings = resolve_settings(cli)
    parse_filter(settings.requirements)


def _error(message: str) -> int:
    print(f"conform42: {message}", file=sys.stderr, flush=True)
    return EXIT_SUITE_ERROR


def run(args: argparse.Namespace) -> int:
    try:
        _validate(args)
    except (ConfigError, SelectionError, CatalogueError) as exc:
        return _error(str(exc))
    with tempfile.TemporaryDirectory(prefix="conform42-run-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text(_INI, encoding="utf-8")
        try:
            command = build_pytest_command(args, ini)
        except ConfigError as exc:
            return _error(str(exc))
        proc = subprocess.Popen(command, env=_child_env(args), stdin=subprocess.DEVNULL)
        deadline = args.session_timeout + _CHILD_MARGIN_S
        try:
            code = proc.wait(deadline)
        except KeyboardInterrupt:
            # The child got the same SIGINT and stops its reference server; give it time to do so.
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            return _error("interrupted")
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            return _error(f"the run did not end within {deadline:g} s and was killed")
    if code == 5:
        return _error("no test matches the selection (--requirements, --level, --profile)")
    return code if code in (0, 1, 2) else EXIT_SUITE_ERROR

