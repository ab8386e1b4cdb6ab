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
from suite.config import ConfigError, resolve_settings
from suite.option_builders import add_run_options, child_arguments, child_environment
from suite.options import COMPACT, TABLE
from suite.outcomes import EXIT_SUITE_ERROR
from suite.progress import PROGRESS_FD_ENV
from suite.selection import SelectionError, parse_filter

__all__ = ["CONFORMANCE_PACKAGE", "add_run_parser", "build_pytest_command", "run"]

CONFORMANCE_PACKAGE = "suite.conformance"
# The child gets this long beyond its own session watchdog (reference start-up, report writing).
_CHILD_MARGIN_S = 600.0
_INI = "[pytest]\n# conform42 run: deliberately empty, so no project's pytest settings apply.\n"


def add_run_parser(commands: Any) -> None:
    """Add ``run`` to the ``conform42`` sub-command parsers (its options: ``suite.options``)."""
    run_parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run the conformance suite against a target (default: the bundled reference server)",
        description="Run the conformance suite. Without --target the bundled reference server is started. "
        "Exit codes: 0 conformant, 1 non-conformant, 2 usage error, unreachable target or "
        "inconclusive. Arguments after `--` go to pytest.",
    )
    add_run_options(run_parser)
    run_parser.set_defaults(handler=run)


def _values(args: argparse.Namespace) -> dict[str, Any]:
    return {option.name: getattr(args, option.name, None) for option in TABLE.cli}


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
    command = [
        sys.executable,
        "-m",
        "pytest",
        *selection,
        "-c",
        str(ini),
        "--rootdir",
        str(base),
        "--confcutdir",
        str(base),
        "-p",
        "no:cacheprovider",
        "--disable-warnings",
        "-rN",
        "-o",
        "console_output_style=classic",
    ]
    command += ["-v"] * args.verbose if args.verbose else ["-qq", COMPACT.pytest_spellings[0]]
    command.append("--tb=short" if args.verbose > 1 else "--tb=no")
    command += child_arguments(_values(args))
    return [*command, *getattr(args, "pytest_args", [])]


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(child_environment(_values(args)))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _progress_fd(args: argparse.Namespace) -> int | None:
    """A copy of this process's standard output for the child's progress line (``suite.progress``), or
    None: ``-q``, ``-v`` (pytest lists every test itself) or no file descriptor to copy."""
    if args.quiet or args.verbose:
        return None
    try:
        sys.stdout.flush()
        return os.dup(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return None


def _validate(args: argparse.Namespace) -> None:
    """Fail before starting anything when the settings or the expression are wrong (one line, exit 2).

    The plugin resolves the same settings again in the child; checking here first keeps a usage error
    to one line, without pytest's start-up around it. URLs, the image URL and the accepted skips are
    checked by ``resolve_settings`` itself, so plain ``pytest`` gets the same checks.
    """
    settings = resolve_settings(_values(args))
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
        env = _child_env(args)
        progress_fd = _progress_fd(args)
        if progress_fd is not None:
            env[PROGRESS_FD_ENV] = str(progress_fd)
        try:
            proc = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=() if progress_fd is None else (progress_fd,),
            )
        finally:
            if progress_fd is not None:
                os.close(progress_fd)  # the child has its own copy
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
