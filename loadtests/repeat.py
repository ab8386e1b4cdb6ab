"""``python -m loadtests --repeat N ...``: the same load N times, pooled into one summary.

Locust's main ends the process when its run is over, and its runners, greenlets and statistics are
process-wide, so each run is a child ``python -m loadtests`` with the same arguments, less those this
process answers for: ``--repeat``, ``--compare`` (the pooled runs are compared once, here),
``--summary-json`` (each child writes its own into the runs folder) and ``--summary-html`` (each child
draws its own page, ``X.run<k>.html`` next to the ``X.html`` asked for). Locust's own files
(``--html``, ``--json-file``, ``--logfile``, the ``--csv`` prefix; on the command line or as
``LOCUST_*``) get the same ``.run<k>`` mark, so no run overwrites another's. The runs go one after the
other, never at once: runs side by side would load the server and the machine together.

No Locust import: this process only starts children, reads their summaries and pools them
(``loadtests.runs``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from loadtests.compare import BaselineError, CompareSettings, compare_summaries, load_baseline
from loadtests.harness_option import read_options
from loadtests.options import OPTIONS_BY_NAME
from loadtests.report import add_comparison, render, write_json
from loadtests.runs import EXIT_USAGE, RunResult, combine, repeat_arg

__all__ = [
    "EXIT_INTERRUPTED",
    "child_args",
    "child_env",
    "per_run",
    "refusal",
    "repeat_count",
    "run_repeated",
]

#: What a shell reports for a program stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Options this process answers for, each with a value; children never see them.
_OWN = ("repeat", "compare", "summary_json", "summary_html")
_PARENT_ONLY = (*_OWN, "regression_threshold", "compare_percentile")
#: Modes with a run that is not one headless process from start to end.
_REFUSED = {
    "--master": "a distributed run (its workers end with the master's run)",
    "--worker": "a worker (it follows its master)",
    "--web": "the web UI",
}
_SWEEPS = ("sweep", "sweep_rates", "sweep_users")
#: Seconds the child gets to end on its own after Ctrl-C (the terminal sent it SIGINT too), then
#: after a SIGINT of ours, then after SIGTERM; then SIGKILL.
_STOP_WAITS = (2.0, 15.0, 5.0)
#: Locust's options naming a file (or, --csv, a prefix) a run writes, with their environment variables.
_LOCUST_FILES = {"--html": "LOCUST_HTML", "--json-file": "LOCUST_JSON_FILE", "--logfile": "LOCUST_LOGFILE"}
_LOCUST_PREFIXES = {"--csv": "LOCUST_CSV"}
_LOCUST_OUTPUTS = {**_LOCUST_FILES, **_LOCUST_PREFIXES}
_LOG_TAIL = 20


def _parse(args: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    """This process's options from the command line, else the environment, else their defaults."""
    return read_options((OPTIONS_BY_NAME[name] for name in (*_PARENT_ONLY, *_SWEEPS)), args, env)


def repeat_count(args: Sequence[str], env: Mapping[str, str]) -> int:
    """How many runs ``--repeat`` (else ``LOCUST_REPEAT``) asks for, 1 without; ValueError for a bad
    number. Read by hand, not by a parser: every ``python -m loadtests`` asks, and the other options'
    errors are Locust's to report."""
    word = env.get(OPTIONS_BY_NAME["repeat"].env)
    for i, arg in enumerate(args):
        if arg == "--repeat":
            word = args[i + 1] if i + 1 < len(args) else ""
        elif arg.startswith("--repeat="):
            word = arg.split("=", 1)[1]
    try:
        return 1 if word is None else repeat_arg(word)
    except ValueError:
        raise ValueError(f"--repeat takes a whole number of runs, 1 or more, not {word!r}") from None


def refusal(args: Sequence[str], env: Mapping[str, str]) -> str | None:
    """Why these options cannot be repeated, or None."""
    for flag, what in _REFUSED.items():
        # Locust also reads LOCUST_MODE_MASTER / LOCUST_MODE_WORKER (web: the harness's own option).
        if flag in args or env.get("LOCUST_MODE_" + flag[2:].upper(), "").lower() in ("1", "true", "yes"):
            return f"--repeat runs one headless process per run, not {what}"
    if any(getattr(_parse(args, env), name) for name in _SWEEPS):
        return "--repeat does not pool capacity sweeps (each has its own ladder and step table)"
    return None


def per_run(path: str, index: int, *, prefix: bool = False) -> str:
    """``path`` marked as run ``index``'s: ``out.html`` -> ``out.run2.html``; a prefix gets ``.run2``."""
    if prefix:
        return f"{path}.run{index}"
    p = Path(path)
    return str(p.with_name(f"{p.stem}.run{index}{p.suffix}"))


def _per_run_value(flag: str, value: str, index: int) -> str:
    return per_run(value, index, prefix=flag in _LOCUST_PREFIXES)


def child_args(
    args: Sequence[str], summary_json: Path, summary_html: Path | None, *, index: int = 1
) -> list[str]:
    """Run ``index``'s command line: ``args`` less this process's own options, Locust's output files
    marked as this run's, plus the run's own summary files."""
    out: list[str] = []
    skip = False
    renamed = ""
    flags = tuple(OPTIONS_BY_NAME[name].flag_name for name in _OWN)
    for arg in args:
        flag, eq, value = arg.partition("=")
        if skip:
            skip = False
        elif renamed:
            out.append(_per_run_value(renamed, arg, index))
            renamed = ""
        elif arg in flags:
            skip = True  # its value is the next word
        elif eq and flag in flags:
            pass
        elif arg in _LOCUST_OUTPUTS:
            out.append(arg)
            renamed = arg  # its value is the next word
        elif eq and flag in _LOCUST_OUTPUTS:
            out.append(f"{flag}={_per_run_value(flag, value, index)}")
        else:
            out.append(arg)
    out += ["--summary-json", str(summary_json)]
    if summary_html is not None:
        out += ["--summary-html", str(summary_html)]
    return out


def child_env(env: Mapping[str, str], *, index: int = 1) -> dict[str, str]:
    """The environment less this process's own options (a child that read LOCUST_REPEAT would repeat),
    Locust's output files marked as run ``index``'s."""
    dropped = {OPTIONS_BY_NAME[name].env for name in _OWN}
    out = {k: v for k, v in env.items() if k not in dropped}
    for flag, name in _LOCUST_OUTPUTS.items():
        if out.get(name):
            out[name] = _per_run_value(flag, out[name], index)
    return {**out, "PYTHONUNBUFFERED": "1"}


class _Stop(Exception):
    """SIGTERM, handled like Ctrl-C: the running child is stopped, no further run starts."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ended(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End an interrupted child: it may end on its own (Ctrl-C reaches the whole process group), else
    SIGINT lets Locust stop its users and quit, else SIGTERM, else SIGKILL."""
    if _ended(proc, _STOP_WAITS[0]):
        return
    for sig, seconds in zip((signal.SIGINT, signal.SIGTERM), _STOP_WAITS[1:], strict=True):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        if _ended(proc, seconds):
            return
    proc.kill()
    proc.wait()


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-_LOG_TAIL:])


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run(
    command: Sequence[str],
    args: Sequence[str],
    env: Mapping[str, str],
    index: int,
    folder: Path,
    html: Path | None,
) -> RunResult:
    summary_path, log = folder / f"run-{index}.json", folder / f"run-{index}.log"
    summary_path.unlink(missing_ok=True)  # a file left by an earlier repeat must not pass for this run's
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, *child_args(args, summary_path, html, index=index)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(env, index=index),
        )
        try:
            code = proc.wait()
        except (KeyboardInterrupt, _Stop):
            _stop(proc)
            raise
    return RunResult(index, code, _read_summary(summary_path), time.monotonic() - started, str(log))


def _progress(result: RunResult, out: IO[str]) -> None:
    s = result.summary
    took = f"{result.seconds:.1f} s"
    if s is None:
        print(f"CRASHED: exit {result.exit_code}, no summary ({took}); the end of {result.log}:", file=out)
        print(_tail(Path(result.log)), file=out)
        return
    verdict = "pass" if result.exit_code == 0 else f"FAIL (exit {result.exit_code})"
    detail = "; ".join(s.get("reasons", []))
    requests = s.get("totals", {}).get("requests", 0)
    print(f"{verdict}, {requests} requests, {took}" + (f": {detail}" if detail else ""), file=out)


def _html_path(summary_html: str, index: int) -> Path | None:
    if not summary_html:
        return None
    return Path(per_run(summary_html if Path(summary_html).suffix else summary_html + ".html", index))


def run_repeated(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] = (sys.executable, "-m", "loadtests"),
    out: IO[str] | None = None,
) -> int:
    """Run the load ``--repeat`` times and report the pooled summary; the exit code of the whole."""
    env = dict(os.environ if env is None else env)
    out = out or sys.stdout
    problem = refusal(args, env)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    opts = _parse(args, env)
    count: int = opts.repeat
    settings = CompareSettings(
        baseline=opts.compare or "",
        threshold_pct=float(opts.regression_threshold),
        percentile=float(opts.compare_percentile),
    )
    try:  # before any load, like a single run: a baseline that cannot be compared stops here
        baseline = load_baseline(settings.baseline) if settings.baseline else None
    except BaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    kept = Path(opts.summary_json + ".runs") if opts.summary_json else None
    folder = kept or Path(tempfile.mkdtemp(prefix="conform42-repeat-"))
    folder.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    try:
        with _sigterm_stops():
            for index in range(1, count + 1):
                print(f"run {index}/{count} ...", end=" ", file=out, flush=True)
                result = _run(command, args, env, index, folder, _html_path(opts.summary_html, index))
                results.append(result)
                _progress(result, out)
                if result.exit_code == EXIT_USAGE:
                    print("a setup problem: the other runs would meet it too; stopping", file=out)
                    break
    except (KeyboardInterrupt, _Stop):
        done = f"{len(results)} of {count} runs finished"
        where = f" (each run's summary is in {kept})" if kept else ""
        print(f"\ninterrupted: {done}; no pooled summary written{where}", file=out, flush=True)
        return EXIT_INTERRUPTED
    finally:
        if kept is None:
            shutil.rmtree(folder, ignore_errors=True)
    summary = combine(results, count)
    if baseline is not None:
        add_comparison(summary, compare_summaries(baseline, summary, settings))
    if opts.summary_json:
        write_json(summary, Path(opts.summary_json))
    out.flush()
    render(summary, file=out)
    return int(summary["exit_code"])
