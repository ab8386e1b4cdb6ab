"""Prove the suite: run ``conform42 run`` against every planted fault and score what it catches.

    python -m tests.faults.prove                       # every fault, two at a time
    python -m tests.faults.prove --faults a,b --jobs 1
    python -m tests.faults.prove --requirements-only   # only the tests of each fault's requirements
    python -m tests.faults.prove --clean-runs 5        # false failures against the clean server
    python -m tests.faults.prove --liberties all       # faults and planted liberties: recall | precision
    python -m tests.faults.prove --liberties a,b --no-faults --jobs 1

For each fault: start ``python -m tests.faults.serve --fault NAME`` on a free loopback port, run the
suite against it as a subprocess with a timeout, read ``DIR/results.json`` and record

* **caught**: the run ended non-conformant (exit 1) *and* at least one of the fault's requirement IDs
  has outcome Fail;
* **flagged**: one of its requirements failed, but the run did not end non-conformant (should not
  happen: the proof runs the suite with ``--gate may``, so a failed requirement of any level gates);
* otherwise **undetected**, listed with the outcomes of its requirements.

The mutation score is caught / planted, per area and overall. A JSON summary is written beside the
per-fault report folders. ``--liberties`` also runs the planted liberties (``liberties_prove.py``: the
suite with its default gate against variations the documents allow; passed = CONFORMANT with no MUST
Fail or Error) and prints both scores on one line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from reference_server.auth import DEMO_KEYS
from suite.catalogue import Requirement, load_catalogue
from tests.faults.catalogue import AREAS, FAULTS, Fault, get
from tests.faults.paths import INTERMEDIARIES, busy_machine, through
from tests.support.server_process import REPO_ROOT, ServerProcess

__all__ = [
    "CleanSummary",
    "FaultResult",
    "FaultServer",
    "SuiteRun",
    "gates",
    "in_pool",
    "judge",
    "main",
    "parse_results",
    "parse_stdout",
    "profile_for",
    "prove_fault",
    "run_clean",
    "run_suite",
    "score",
    "summary",
]

FAIL = "Fail"
EXIT_NON_CONFORMANT = 1
EXIT_INCONCLUSIVE = 2
RESULTS_FILE = "results.json"
DEFAULT_WORK_DIR = REPO_ROOT / ".cache" / "faults"
#: A full run includes a 60 s token-expiry wait and batch polling; a filtered one is much shorter.
FULL_RUN_TIMEOUT_S = 1200.0
FILTERED_RUN_TIMEOUT_S = 600.0
#: The suite's per-request timeout (its --timeout): the sim answers in milliseconds, so a stalled stream
#: or a hanging server is judged in 10 s instead of the default 30 per request.
REQUEST_TIMEOUT_S = 10.0
#: At this delay per token a short answer streams for seconds, as on a CPU engine (the zero-delay pass,
#: ``--sim-token-delay 0``, checks that the concurrency tests also judge a target that answers at once).
SIM_TOKEN_DELAY_S = 0.15

T = TypeVar("T")
R = TypeVar("R")

_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()


class FaultServer(ServerProcess):
    """``python -m tests.faults.serve --fault NAME`` as a child process (own group, free port)."""

    def __init__(self, fault: str, args: Sequence[str] = (), startup_timeout: float = 60) -> None:
        super().__init__(
            ["--fault", fault, *args], startup_timeout=startup_timeout, module="tests.faults.serve"
        )
        self.fault = fault


# ----------------------------------------------------------------------------------------- results


@dataclass
class SuiteRun:
    """One ``conform42 run``: its exit code (None: timed out or never ran) and per-requirement outcomes."""

    exit_code: int | None
    outcomes: dict[str, str] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)
    verdict: str | None = None
    duration_s: float = 0.0
    error: str | None = None
    report_dir: str | None = None
    stdout_tail: str = ""

    @property
    def failed(self) -> list[str]:
        return sorted(rid for rid, outcome in self.outcomes.items() if outcome == FAIL)


def parse_results(path: Path) -> tuple[int | None, str | None, dict[str, str], dict[str, str]]:
    """``results.json`` -> (exit code, verdict, requirement outcomes, requirement levels).

    The suite writes ``requirements: [{id, level, outcome, ...}]``; a mapping ``{id: outcome}`` (or
    ``{id: {outcome}}``) is read too.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    outcomes: dict[str, str] = {}
    levels: dict[str, str] = {}
    entries = data.get("requirements", {})
    if isinstance(entries, dict):
        entries = [{"id": k, **(v if isinstance(v, dict) else {"outcome": v})} for k, v in entries.items()]
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            outcomes[entry["id"]] = str(entry.get("outcome", ""))
            if entry.get("level"):
                levels[entry["id"]] = str(entry["level"])
    code = data.get("exit_code")
    verdict = data.get("verdict")
    return (
        code if isinstance(code, int) else None,
        verdict if isinstance(verdict, str) else None,
        outcomes,
        levels,
    )


_STDOUT_LINE = re.compile(r"\b(PASS|FAIL|ERROR|SKIP|DISABLED)\b\s+([A-Z]+-\d{3})\b")


def parse_stdout(text: str) -> dict[str, str]:
    """Outcomes from the terminal report (``FAIL STREAM-007 [SHOULD] ...``), for runs without a JSON file.

    A requirement named on several lines takes its worst outcome.
    """
    rank = {"DISABLED": 0, "SKIP": 1, "PASS": 2, "ERROR": 3, "FAIL": 4}
    best: dict[str, str] = {}
    for outcome, rid in _STDOUT_LINE.findall(text):
        if rid not in best or rank[outcome] > rank[best[rid]]:
            best[rid] = outcome
    return {rid: outcome.capitalize() for rid, outcome in best.items()}


def suite_command(
    base_url: str,
    report_dir: Path,
    requirements: Iterable[str] = (),
    keys: dict[str, str] | None = None,
    extra: Sequence[str] = (),
    profile: str = "42ai",
    *,
    gate: str | None = "may",
    name_models: bool = True,
) -> list[str]:
    """The ``conform42 run`` command line. ``gate=None``: the default gate (MUST), as the planted
    liberties are judged; ``name_models=False``: the suite finds the models itself, as a user's run."""
    keys = keys or {str(tier): key for tier, key in DEMO_KEYS.items()}
    command = [
        sys.executable,
        "-m",
        "suite",
        "run",
        "--target",
        base_url,
        "--profile",
        profile,
        "--report",
        str(report_dir),
    ]
    # --gate may: the verdict gates on every level, so a fault that breaks only a SHOULD is caught too
    # (by default the verdict reads MUST requirements only).
    if gate is not None:
        command += ["--gate", gate]
    for tier in ("free", "pro", "internal"):
        command += [f"--key-{tier}", keys[tier]]
    # The fault servers serve the documented IDs in either flavour. Naming them keeps a fault that breaks
    # GET /v1/models (judged by the MODEL tests) from stopping a fortytwo run at its model discovery.
    if name_models:
        command += ["--chat-model", "42-general", "--embed-model", "42-embed"]
    ids = list(requirements)
    if ids:
        command += ["--requirements", " or ".join(ids)]
    return [*command, "--timeout", f"{REQUEST_TIMEOUT_S:g}", *extra]


def run_suite(
    base_url: str,
    report_dir: Path,
    *,
    requirements: Iterable[str] = (),
    timeout_s: float = FULL_RUN_TIMEOUT_S,
    extra: Sequence[str] = (),
    profile: str = "42ai",
    command: Sequence[str] | None = None,
) -> SuiteRun:
    """Run the suite as a subprocess (own process group, killed on timeout) and read what it reports.

    ``command`` replaces the ``conform42 run`` command line (tests use a stand-in).
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    command = (
        list(command)
        if command is not None
        else suite_command(base_url, report_dir, requirements, extra=extra, profile=profile)
    )
    log = report_dir / "suite-output.txt"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with _running_lock:
            _running.add(proc)
        try:
            code: int | None = proc.wait(timeout_s)
            error = None
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code, error = None, f"the suite did not finish within {timeout_s:.0f} s"
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            with _running_lock:
                _running.discard(proc)
    text = log.read_text(encoding="utf-8", errors="replace")
    run = SuiteRun(
        code,
        duration_s=time.monotonic() - started,
        error=error,
        report_dir=str(report_dir),
        stdout_tail="\n".join(text.splitlines()[-15:]),
    )
    results = report_dir / RESULTS_FILE
    if results.is_file():
        try:
            _, run.verdict, run.outcomes, run.levels = parse_results(results)
        except (ValueError, OSError) as exc:
            run.error = run.error or f"unreadable {results}: {exc}"
    else:
        run.outcomes = parse_stdout(text)
        run.error = run.error or f"no {RESULTS_FILE} (outcomes read from the terminal output)"
    return run


def stop_running_suites() -> None:
    """Stop every suite run in progress (on Ctrl-C): their workers then stop their servers."""
    with _running_lock:
        running = list(_running)
    for proc in running:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(10)
            break
        except subprocess.TimeoutExpired:
            continue


# ----------------------------------------------------------------------------------------- judging


@functools.cache
def _requirements() -> dict[str, Requirement]:
    return {r.id: r for r in load_catalogue()}


def profile_for(fault: Fault) -> str:
    """The profile to prove ``fault`` under: one where some requirement it breaks is a MUST.

    The verdict gates on MUST requirements only, so a fault whose 42ai requirements are all SHOULDs but
    which breaks a Fortytwo MUST (CHAT-005, STREAM-001, ERR-001, ...) is served and judged as Fortytwo.
    """
    catalogue = _requirements()
    musts = {catalogue[rid].profile for rid in fault.requirements if catalogue[rid].level == "MUST"}
    return "fortytwo" if musts and musts <= {"fortytwo"} else "42ai"


def gates(fault: Fault) -> bool:
    """Whether the verdict can gate on ``fault``: always, since the proof runs with ``--gate may``."""
    return bool(fault.requirements)


@dataclass
class FaultResult:
    fault: str
    area: str
    requirements: tuple[str, ...]
    run: SuiteRun
    profile: str = "42ai"
    #: False when the fault breaks SHOULD requirements only: then the best it can be is flagged.
    gating: bool = True
    #: Proved behind an intermediary (``--via``): there a run that could not judge the fault's
    #: requirements (INCONCLUSIVE, naming them as Skip) is an honest answer too; CONFORMANT never is.
    via: str | None = None

    @property
    def named(self) -> list[str]:
        """The fault's requirements that the run failed."""
        return [rid for rid in self.requirements if self.run.outcomes.get(rid) == FAIL]

    @property
    def caught(self) -> bool:
        return self.run.exit_code == EXIT_NON_CONFORMANT and bool(self.named)

    @property
    def inconclusive(self) -> bool:
        """The run ended INCONCLUSIVE (exit 2) with one of the fault's requirements at Skip."""
        skipped = any(self.run.outcomes.get(rid) == "Skip" for rid in self.requirements)
        return self.run.exit_code == EXIT_INCONCLUSIVE and skipped

    @property
    def held(self) -> bool:
        """Caught, or behind an intermediary, left INCONCLUSIVE on the fault's own requirements."""
        return self.caught or (self.via is not None and self.inconclusive)

    @property
    def status(self) -> str:
        if self.caught:
            return "caught"
        if self.via is not None and self.inconclusive:
            return "inconclusive"
        if self.named:
            return "flagged"
        return "error" if self.run.error and not self.run.outcomes else "undetected"

    def outcomes(self) -> dict[str, str]:
        return {rid: self.run.outcomes.get(rid, "absent") for rid in self.requirements}

    def to_dict(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "area": self.area,
            "requirements": list(self.requirements),
            "profile": self.profile,
            "gating": self.gating,
            "status": self.status,
            "caught": self.caught,
            "via": self.via,
            "named": self.named,
            "outcomes": self.outcomes(),
            "run": asdict(self.run),
        }


def judge(fault: Fault, run: SuiteRun, via: str | None = None) -> FaultResult:
    return FaultResult(fault.name, fault.area, fault.requirements, run, profile_for(fault), gates(fault), via)


@dataclass(frozen=True)
class Score:
    caught: int
    planted: int
    flagged: int = 0

    @property
    def ratio(self) -> float:
        return self.caught / self.planted if self.planted else 0.0

    def __str__(self) -> str:
        flagged = f", {self.flagged} more flagged" if self.flagged else ""
        return f"{self.caught}/{self.planted} ({self.ratio:.0%}{flagged})"


def score(results: Sequence[FaultResult]) -> tuple[dict[str, Score], Score]:
    """The mutation score per area (catalogue order, areas with faults only) and overall."""
    areas = {area: [r for r in results if r.area == area] for area in AREAS}

    def of(rs: Sequence[FaultResult]) -> Score:
        # Held: caught, or behind an intermediary INCONCLUSIVE on the fault's requirements (``--via``).
        return Score(sum(r.held for r in rs), len(rs), sum(r.status == "flagged" for r in rs))

    per_area = {area: of(rs) for area, rs in areas.items() if rs}
    return per_area, of(results)


# ----------------------------------------------------------------------------------------- running


def _server_args(profile: str, extra: Sequence[str], token_delay_s: float = SIM_TOKEN_DELAY_S) -> list[str]:
    return ["--flavour", profile, "--sim-token-delay", f"{token_delay_s:g}", *extra]


def prove_fault(
    fault: Fault,
    work_dir: Path,
    *,
    requirements_only: bool = False,
    timeout_s: float | None = None,
    server_args: Sequence[str] = (),
    token_delay_s: float = SIM_TOKEN_DELAY_S,
    via: str | None = None,
    busy: bool = False,
) -> FaultResult:
    """Serve ``fault``, run the suite against it, judge the run. The server is always stopped.

    ``via``: an intermediary in front of the server (``paths.through``); ``busy``: a busy machine."""
    report_dir = work_dir / fault.name
    shutil.rmtree(report_dir, ignore_errors=True)
    limit = timeout_s or (FILTERED_RUN_TIMEOUT_S if requirements_only else FULL_RUN_TIMEOUT_S)
    profile = profile_for(fault)
    try:
        with (
            FaultServer(fault.name, _server_args(profile, server_args, token_delay_s)) as server,
            through(via, server.base_url) as url,
            busy_machine(busy),
        ):
            run = run_suite(
                url,
                report_dir,
                timeout_s=limit,
                profile=profile,
                requirements=fault.requirements if requirements_only else (),
            )
    except Exception as exc:  # the server did not start: record it, go on with the other faults
        run = SuiteRun(None, error=f"{type(exc).__name__}: {exc}", report_dir=str(report_dir))
    return judge(fault, run, via)


@dataclass
class CleanSummary:
    runs: list[SuiteRun]
    #: Judged by the default gate: only MUST failures count (the SHOULDs a path touches are listed).
    must_only: bool = False

    @property
    def false_failures(self) -> list[list[str]]:
        if self.must_only:
            return [[rid for rid in run.failed if run.levels.get(rid) == "MUST"] for run in self.runs]
        return [run.failed for run in self.runs]

    @property
    def clean(self) -> bool:
        return all(
            not failed and run.exit_code == 0
            for failed, run in zip(self.false_failures, self.runs, strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": len(self.runs),
            "clean": self.clean,
            "false_failures": sum(len(f) for f in self.false_failures),
            "per_run": [
                {
                    "exit_code": r.exit_code,
                    "failed": r.failed,
                    "error": r.error,
                    "duration_s": round(r.duration_s, 1),
                }
                for r in self.runs
            ],
        }


def run_clean(
    count: int,
    work_dir: Path,
    *,
    requirements: Sequence[str] = (),
    timeout_s: float | None = None,
    profile: str = "42ai",
    server_args: Sequence[str] = (),
    token_delay_s: float = SIM_TOKEN_DELAY_S,
    via: str | None = None,
    busy: bool = False,
    gate: str | None = "may",
    accept_skip: Sequence[str] = (),
) -> CleanSummary:
    """``count`` consecutive suite runs against the clean server (a fresh one each time); ``via`` and
    ``busy`` as for ``prove_fault``, ``gate`` as for ``suite_command`` (None: MUST, as a user's CI);
    ``accept_skip``: requirement IDs whose Skip the runs accept, as a user behind such a path would."""
    runs = []
    for number in range(1, count + 1):
        report_dir = work_dir / f"clean-{profile}-{number}"
        shutil.rmtree(report_dir, ignore_errors=True)
        with (
            FaultServer("none", _server_args(profile, server_args, token_delay_s)) as server,
            through(via, server.base_url) as url,
            busy_machine(busy),
        ):
            extra = ["--accept-skip", ",".join(accept_skip)] if accept_skip else []
            command = suite_command(url, report_dir, requirements, profile=profile, gate=gate, extra=extra)
            runs.append(
                run_suite(url, report_dir, timeout_s=timeout_s or FULL_RUN_TIMEOUT_S, command=command)
            )
    return CleanSummary(runs, must_only=gate is None)


def prove(
    faults: Sequence[Fault],
    work_dir: Path,
    *,
    jobs: int = 2,
    requirements_only: bool = False,
    timeout_s: float | None = None,
    progress: Callable[[FaultResult], None] | None = None,
    token_delay_s: float = SIM_TOKEN_DELAY_S,
    via: str | None = None,
    busy: bool = False,
) -> list[FaultResult]:
    """Prove every fault, ``jobs`` at a time; results in the order of ``faults``."""

    def one(fault: Fault) -> FaultResult:
        result = prove_fault(
            fault,
            work_dir,
            requirements_only=requirements_only,
            timeout_s=timeout_s,
            token_delay_s=token_delay_s,
            via=via,
            busy=busy,
        )
        if progress is not None:
            progress(result)
        return result

    return in_pool(one, faults, jobs)


def in_pool(one: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """``one`` over ``items``, ``jobs`` at a time, results in order; on Ctrl-C the items not started are
    dropped and the suites running are stopped (their servers stop with them)."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        return list(pool.map(one, items))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        stop_running_suites()
        raise
    finally:
        pool.shutdown(wait=True)


# ----------------------------------------------------------------------------------------- reports


def summary(results: Sequence[FaultResult], clean: CleanSummary | None = None) -> dict[str, Any]:
    per_area, overall = score(results)
    data: dict[str, Any] = {
        "mutation_score": {
            "caught": overall.caught,
            "planted": overall.planted,
            "ratio": overall.ratio,
            "flagged": overall.flagged,
        },
        "per_area": {
            area: {"caught": s.caught, "planted": s.planted, "ratio": s.ratio, "flagged": s.flagged}
            for area, s in per_area.items()
        },
        "faults": [r.to_dict() for r in results],
        "undetected": [r.fault for r in results if not r.held],
    }
    if clean is not None:
        data["clean_runs"] = clean.to_dict()
    return data


def render(results: Sequence[FaultResult], clean: CleanSummary | None = None) -> str:
    lines: list[str] = []
    if results:
        per_area, overall = score(results)
        lines.append("Mutation score per area (caught / planted):")
        lines += [f"  {area:<11} {s}" for area, s in per_area.items()]
        lines.append(f"  {'overall':<11} {overall}")
        missed = [r for r in results if not r.held]
        if missed:
            lines.append(f"Not caught ({len(missed)}):")
            for r in missed:
                outcomes = ", ".join(f"{rid} {outcome}" for rid, outcome in r.outcomes().items())
                exit_code = "timeout" if r.run.exit_code is None else f"exit {r.run.exit_code}"
                gate = "" if r.gating else ", SHOULD only"
                where = f"[{r.area}, {r.profile}{gate}]"
                lines.append(f"  {r.status.upper():<10} {r.fault} {where} ({exit_code}): {outcomes}")
                if r.run.error:
                    lines.append(f"             {r.run.error}")
    if clean is not None:
        lines.append(
            f"Clean runs: {len(clean.runs)}, false failures: {sum(len(f) for f in clean.false_failures)}"
        )
        for number, (run, failed) in enumerate(zip(clean.runs, clean.false_failures, strict=True), 1):
            lines.append(
                f"  run {number}: exit {run.exit_code}, failed: {', '.join(failed) or 'none'}"
                + (f" ({run.error})" if run.error else "")
            )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.prove", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--faults", help="comma-separated fault names (default: the whole catalogue)")
    parser.add_argument("--area", action="append", choices=AREAS, help="only the faults of this area")
    parser.add_argument("--jobs", type=int, default=2, help="faults proved at a time (default 2)")
    parser.add_argument(
        "--requirements-only",
        action="store_true",
        help="run only the suite's tests of each fault's requirements (--requirements)",
    )
    parser.add_argument(
        "--clean-runs",
        type=int,
        default=0,
        metavar="N",
        help="run the suite N times against the clean server and count false failures",
    )
    parser.add_argument(
        "--clean-profile",
        choices=("42ai", "fortytwo"),
        default="42ai",
        help="profile of the clean runs (default 42ai; faults that break only Fortytwo MUSTs "
        "are proved under fortytwo)",
    )
    parser.add_argument("--timeout", type=float, help="seconds one suite run may take")
    parser.add_argument(
        "--sim-token-delay",
        type=float,
        default=SIM_TOKEN_DELAY_S,
        metavar="SECONDS",
        help=f"the fault servers' seconds per token (default {SIM_TOKEN_DELAY_S:g}; 0: a "
        "target that answers at once, where the limit tests must still judge)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help=f"per-run report folders and the summary (default {DEFAULT_WORK_DIR})",
    )
    parser.add_argument("--list", action="store_true", help="print the fault catalogue and exit")
    parser.add_argument(
        "--liberties",
        metavar="NAMES",
        help="also prove these planted liberties (comma-separated, or all); with --requirements-only "
        "each run is limited to the tests the liberty shows in",
    )
    parser.add_argument("--no-faults", action="store_true", help="with --liberties: the liberties only")
    parser.add_argument(
        "--via",
        choices=INTERMEDIARIES,
        help="faults and clean runs: serve through this intermediary (tests/faults/paths.py); a fault "
        "left INCONCLUSIVE on its own requirements is then held too (never CONFORMANT)",
    )
    parser.add_argument(
        "--busy", action="store_true", help="faults and clean runs: yes > /dev/null beside the server"
    )
    parser.add_argument(
        "--clean-gate",
        choices=("may", "must"),
        default="may",
        help="the gate of the clean runs (default may: any failure counts; must: as a user's CI)",
    )
    parser.add_argument(
        "--clean-accept-skip",
        default="",
        metavar="IDS",
        help="clean runs: requirement IDs whose Skip the verdict accepts (conform42 run --accept-skip), "
        "as the README tells a user whose proxy hides what the limits need",
    )
    parser.add_argument(
        "--list-liberties",
        action="store_true",
        help="print the liberty catalogue (Markdown, as in the README) and exit",
    )
    return parser


def _selected(args: argparse.Namespace) -> list[Fault]:
    if args.faults:
        return [get(name.strip()) for name in args.faults.split(",") if name.strip()]
    faults = list(FAULTS.values())
    return [f for f in faults if f.area in args.area] if args.area else faults


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list_liberties:
        from tests.faults.liberties_report import markdown_table  # lazily: the liberties import prove

        print(markdown_table())
        return 0
    if args.list and not args.liberties:
        for f in FAULTS.values():
            print(f"{f.name:<34} {f.area:<11} {' '.join(f.requirements):<28} {f.description}")
        return 0
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: servers and suites too
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("prove: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    from tests.faults import liberties_report  # lazily: it imports this module

    try:
        only_other = (args.clean_runs or args.no_faults) and not (args.faults or args.area)
        faults = [] if only_other else _selected(args)
        liberties = liberties_report.selected(args.liberties)
    except KeyError as exc:
        print(f"prove: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.list:
        print(liberties_report.plain_list(liberties))
        return 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="prove-", dir=args.work_dir))

    def progress(result: FaultResult) -> None:
        print(f"{result.status:<10} {result.fault} ({result.run.duration_s:.0f} s)", flush=True)

    results = (
        prove(
            faults,
            work_dir,
            jobs=args.jobs,
            requirements_only=args.requirements_only,
            timeout_s=args.timeout,
            progress=progress,
            token_delay_s=args.sim_token_delay,
            via=args.via,
            busy=args.busy,
        )
        if faults
        else []
    )
    clean = (
        run_clean(
            args.clean_runs,
            work_dir,
            timeout_s=args.timeout,
            profile=args.clean_profile,
            token_delay_s=args.sim_token_delay,
            via=args.via,
            busy=args.busy,
            gate=None if args.clean_gate == "must" else "may",
            accept_skip=[i.strip() for i in args.clean_accept_skip.split(",") if i.strip()],
        )
        if args.clean_runs
        else None
    )
    freedoms = liberties_report.run(liberties, work_dir, args) if liberties else []
    report = summary(results, clean)
    if liberties:
        report["liberties"] = liberties_report.summary(freedoms)
    out = work_dir / "summary.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(results, clean))
    if liberties:
        print(liberties_report.render(freedoms))
        print(liberties_report.score_line(score(results)[1] if results else None, freedoms))
    print(f"Summary: {out}")
    missed = any(not r.held for r in results) or any(not r.passed for r in freedoms)
    return 1 if missed or (clean is not None and not clean.clean) else 0


if __name__ == "__main__":
    sys.exit(main())
