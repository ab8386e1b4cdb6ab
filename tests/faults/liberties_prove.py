"""Prove the suite fair: run ``conform42 run`` against the reference server with each planted liberty.

The mirror of the fault proof (``prove.py``, which imports this for its ``--liberties`` option): each
liberty is served by ``python -m tests.faults.liberties_serve`` (sim engines), with its path set up
around it (an intermediary in front, ``yes > /dev/null`` beside it, the engine's token delay), and the
suite runs against it with the *default* gate (MUST), as a user's CI would. A liberty

* **passed** when the run ended CONFORMANT (exit 0) with no MUST requirement at Fail or Error;
* otherwise **failed**, listed with the MUSTs that failed or erred (the suite's false failures, or a
  liberty that breaks what the documents do require: read its report to tell which).

SHOULD requirements that failed are listed too, split into those the liberty declares it ``touches``
and others. Precision is passed / planted.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.faults.liberties import Liberty
from tests.faults.paths import busy_machine, through
from tests.faults.prove import (
    FAIL,
    FILTERED_RUN_TIMEOUT_S,
    FULL_RUN_TIMEOUT_S,
    SIM_TOKEN_DELAY_S,
    Score,
    SuiteRun,
    in_pool,
    run_suite,
    suite_command,
)
from tests.support.server_process import ServerProcess

__all__ = [
    "LibertyResult",
    "LibertyServer",
    "busy_machine",
    "judge_liberty",
    "precision",
    "prove_liberties",
    "prove_liberty",
    "render_liberties",
]

ERROR = "Error"


class LibertyServer(ServerProcess):
    """``python -m tests.faults.liberties_serve --liberty NAME`` as a child process (free port)."""

    def __init__(self, name: str, args: Sequence[str] = (), startup_timeout: float = 60) -> None:
        super().__init__(
            ["--liberty", name, *args], startup_timeout=startup_timeout, module="tests.faults.liberties_serve"
        )


@dataclass
class LibertyResult:
    liberty: str
    area: str
    profile: str
    touches: tuple[str, ...]
    run: SuiteRun
    #: MUSTs whose Skip the run accepted (``Liberty.accepts``).
    accepts: tuple[str, ...] = ()

    @property
    def accepted_skips(self) -> list[str]:
        """The accepted MUSTs that were in fact Skip in this run (the rest were judged and passed)."""
        return [rid for rid in self.accepts if self.run.outcomes.get(rid) == "Skip"]

    def _at(self, level: str, outcomes: tuple[str, ...]) -> list[str]:
        return sorted(
            rid
            for rid, outcome in self.run.outcomes.items()
            if outcome in outcomes and self.run.levels.get(rid) == level
        )

    @property
    def must_failures(self) -> list[str]:
        """MUST requirements at Fail or Error: each one is a false failure or a liberty too far."""
        return self._at("MUST", (FAIL, ERROR))

    @property
    def should_failures(self) -> list[str]:
        return self._at("SHOULD", (FAIL,))

    @property
    def untouched_should_failures(self) -> list[str]:
        return [rid for rid in self.should_failures if rid not in self.touches]

    @property
    def passed(self) -> bool:
        return self.run.exit_code == 0 and not self.must_failures

    @property
    def status(self) -> str:
        if self.passed:
            return "passed"
        return "error" if self.run.exit_code is None and not self.run.outcomes else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "liberty": self.liberty,
            "area": self.area,
            "profile": self.profile,
            "status": self.status,
            "passed": self.passed,
            "must_failures": {rid: self.run.outcomes[rid] for rid in self.must_failures},
            "should_failures": self.should_failures,
            "untouched_should_failures": self.untouched_should_failures,
            "touches": list(self.touches),
            "accepts": list(self.accepts),
            "accepted_skips": self.accepted_skips,
            "run": asdict(self.run),
        }


def judge_liberty(liberty: Liberty, run: SuiteRun) -> LibertyResult:
    return LibertyResult(liberty.name, liberty.area, liberty.profile, liberty.touches, run, liberty.accepts)


def prove_liberty(
    liberty: Liberty,
    work_dir: Path,
    *,
    filtered: bool = False,
    timeout_s: float | None = None,
    token_delay_s: float = SIM_TOKEN_DELAY_S,
) -> LibertyResult:
    """Serve ``liberty`` on its path, run the suite (default gate) against it, judge the run.

    ``filtered``: run only the tests of ``liberty.exercises`` (a quicker, partial proof).
    """
    report_dir = work_dir / f"liberty-{liberty.name}"
    shutil.rmtree(report_dir, ignore_errors=True)
    limit = timeout_s or (FILTERED_RUN_TIMEOUT_S if filtered and liberty.exercises else FULL_RUN_TIMEOUT_S)
    delay = liberty.token_delay_s if liberty.token_delay_s is not None else token_delay_s
    server_args = ["--flavour", liberty.profile, "--sim-token-delay", f"{delay:g}"]
    try:
        with (
            LibertyServer(liberty.name, server_args) as server,
            through(liberty.intermediary, server.base_url) as url,
        ):
            extra = ["--accept-skip", ",".join(liberty.accepts)] if liberty.accepts else []
            command = suite_command(
                url, report_dir, profile=liberty.profile, gate=None, name_models=False, extra=extra
            )
            if filtered and liberty.exercises:
                command += ["--requirements", " or ".join(liberty.exercises.split())]
            with busy_machine(liberty.busy):
                run = run_suite(url, report_dir, timeout_s=limit, command=command)
    except Exception as exc:  # the server or its path did not start: record it, go on with the others
        run = SuiteRun(None, error=f"{type(exc).__name__}: {exc}", report_dir=str(report_dir))
    return judge_liberty(liberty, run)


def prove_liberties(
    liberties: Sequence[Liberty],
    work_dir: Path,
    *,
    jobs: int = 1,
    filtered: bool = False,
    timeout_s: float | None = None,
    progress: Callable[[LibertyResult], None] | None = None,
    token_delay_s: float = SIM_TOKEN_DELAY_S,
) -> list[LibertyResult]:
    """Prove every liberty, ``jobs`` at a time; results in the order given."""

    def one(liberty: Liberty) -> LibertyResult:
        result = prove_liberty(
            liberty, work_dir, filtered=filtered, timeout_s=timeout_s, token_delay_s=token_delay_s
        )
        if progress is not None:
            progress(result)
        return result

    return in_pool(one, liberties, jobs)


def precision(results: Sequence[LibertyResult]) -> Score:
    """Liberties passed / planted (a Score, as the faults' recall is)."""
    return Score(sum(r.passed for r in results), len(results))


def render_liberties(results: Sequence[LibertyResult]) -> str:
    lines = [f"Liberties passed (CONFORMANT, no MUST Fail or Error): {precision(results)}"]
    for r in results:
        exit_code = "timeout" if r.run.exit_code is None else f"exit {r.run.exit_code}"
        musts = ", ".join(f"{rid} {r.run.outcomes[rid]}" for rid in r.must_failures) or "none"
        lines.append(
            f"  {r.status.upper():<7} {r.liberty} [{r.area}, {r.profile}] ({exit_code}, "
            f"{r.run.duration_s:.0f} s): MUST failed: {musts}"
        )
        if r.should_failures:
            touched = [rid for rid in r.should_failures if rid in r.touches]
            lines.append(
                f"          SHOULD failed: touched {', '.join(touched) or 'none'}; "
                f"not declared {', '.join(r.untouched_should_failures) or 'none'}"
            )
        if r.accepts:
            lines.append(
                f"          accepted as Skip (--accept-skip): {', '.join(r.accepted_skips) or 'none needed'}"
                f" of {', '.join(r.accepts)}"
            )
        if r.run.error:
            lines.append(f"          {r.run.error}")
        if not r.passed and r.run.report_dir:
            lines.append(f"          report: {r.run.report_dir}")
    return "\n".join(lines)
