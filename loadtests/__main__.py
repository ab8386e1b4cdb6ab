"""``python -m loadtests [options]``: run Locust headless with the conform42 harness.

Everything after the program name goes to Locust, with these defaults added when absent:
``-f loadtests/locustfile.py``, ``--headless`` (``--web`` keeps the web UI instead), ``-u`` the sum of
the tier users (+1 for the open loop), ``-r`` the same (all at once) and ``-t 60s`` (none for a
capacity sweep, which ends after its last step). Workers (``--worker``) get only ``-f``. The exit
code is the harness's: 0 when no promise was broken and every SLO held, 1 otherwise (2 for a Locust
setup problem).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from loadtests.harness_option import read_options
from loadtests.options import OPTIONS_BY_NAME

__all__ = ["build_argv", "main"]

LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
_USER_COUNT_OPTIONS = ("free_users", "pro_users", "internal_users", "open_loop_rate")
_PREFACE = """\
python -m loadtests: the conform42 LLM load harness (Locust, headless by default).

  python -m loadtests --host http://127.0.0.1:8042 -t 60s --summary-json load.json --csv load
  python -m loadtests --master --expect-workers 2 --host URL -t 60s   # plus, per worker:
  python -m loadtests --worker --master-host 127.0.0.1
  python -m loadtests --web --host URL                                  # web UI instead of headless

Added unless given: -f loadtests/locustfile.py, --headless, -u/-r = the tier users (+1 open loop), -t 60s.
--repeat N runs it all N times, one process after another, and writes one pooled summary.
Exit code: 0 = no promise violated and every SLO met, 1 = violations or SLO breaches. The harness's
options come first, then Locust's own.
"""


def _has(argv: Sequence[str], *flags: str) -> bool:
    return any(a in flags or any(a.startswith(f + "=") for f in flags if f.startswith("--")) for a in argv)


def _users(argv: Sequence[str]) -> int:
    """The number of users the tier options ask for (the harness options, environment or defaults)."""
    known = read_options((OPTIONS_BY_NAME[n] for n in _USER_COUNT_OPTIONS), argv, os.environ)
    total: int = known.free_users + known.pro_users + known.internal_users
    return max(1, total + (1 if known.open_loop_rate > 0 else 0))


def _sweeps(argv: Sequence[str]) -> bool:
    """A capacity sweep ends after its last step, so it gets no default run time."""
    sweeps = ("sweep", "sweep_rates", "sweep_users")
    known = read_options((OPTIONS_BY_NAME[n] for n in sweeps), argv, os.environ)
    return bool(known.sweep or known.sweep_rates or known.sweep_users)


def _api_profile(args: list[str]) -> list[str]:
    """``--profile 42ai|fortytwo`` means the API profile; Locust's own --profile (a run label) is kept."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--profile" and i + 1 < len(args) and args[i + 1] in ("42ai", "fortytwo"):
            out += ["--api-profile", args[i + 1]]
            i += 2
            continue
        if a in ("--profile=42ai", "--profile=fortytwo"):
            a = "--api-" + a[2:]
        out.append(a)
        i += 1
    return out


def build_argv(argv: Sequence[str]) -> list[str]:
    """Locust's command line for the harness (pure, so it can be tested without importing Locust)."""
    args = _api_profile(list(argv))
    out: list[str] = []
    if not _has(args, "-f", "--locustfile"):
        out += ["-f", str(LOCUSTFILE)]
    web = "--web" in args
    args = [a for a in args if a != "--web"]
    if _has(args, "--worker", "-h", "--help", "--version", "-V", "--list", "-l"):
        return out + args
    if not web and not _has(args, "--headless", "--autostart"):
        out.append("--headless")
    if not _has(args, "-u", "--users"):
        out += ["-u", str(_users(args))]
    if not _has(args, "-r", "--spawn-rate"):
        out += ["-r", str(_users(args))]
    if not web and not _has(args, "-t", "--run-time") and not _sweeps(args):
        out += ["-t", "60s"]
    return out + args


def _print_harness_help() -> None:
    # Locust prints its --help before it loads the locustfile, so the harness's options are not in it.
    import configargparse  # type: ignore[import-untyped]  # Locust's parser; it does not import Locust

    from loadtests.options import add_arguments

    parser = configargparse.ArgumentParser(
        prog="python -m loadtests", add_help=False, usage=argparse.SUPPRESS
    )
    add_arguments(parser)
    print("harness options:\n" + parser.format_help().split("\n", 1)[1])


def _repeat(args: list[str]) -> None:
    """With ``--repeat N`` (N > 1) this process runs the N runs as children and exits with their verdict."""
    from loadtests.repeat import repeat_count, run_repeated

    try:
        count = repeat_count(args, os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if count > 1:
        sys.exit(run_repeated(args))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if _has(args, "-h", "--help"):
        print(_PREFACE)
        _print_harness_help()
    else:
        _repeat(args)
    sys.argv = ["locust", *build_argv(args)]
    # Imported only now: importing Locust monkey-patches the whole process with gevent.
    from locust.main import main as locust_main

    locust_main()  # type: ignore[no-untyped-call] # exits with the harness's code (environment.process_exit_code)


if __name__ == "__main__":
    main()
