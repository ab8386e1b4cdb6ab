"""The conform42 pytest plugin (entry point ``pytest11: conform42``).

It adds the target options, the ``requirement`` marker, the session fixtures ``target``, ``api`` and
``features``, and, for a run that collects ``@requirement`` tests, the selection (``--level``,
``--requirements``, profile), the bundled reference server when no target is named, the per-test
outcomes, the reports and the exit code (0 conformant, 1 non-conformant, 2 suite error or
inconclusive). Before the first test a preflight (``suite.preflight``) checks that the target answers
and the keys work; what the user must fix ends the run as a usage error (exit 2, one line on stderr)
without running a test. It is inert for runs without ``@requirement`` tests (the project's own
``tests/``): the options have defaults, no hook changes anything and the fixtures are built only when
asked for.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from suite.catalogue import CatalogueError, Requirement, load_catalogue
from suite.checks import DISABLED_PREFIX, TargetUnreachable
from suite.classify import classify
from suite.config import ENGINES, LEVEL_NAMES, ConfigError, Settings, resolve_settings
from suite.features import Features, discover_models
from suite.http import Api
from suite.markers import MARKER
from suite.outcomes import EXIT_SUITE_ERROR, TestResult, aggregate, decide_verdict
from suite.preflight import run_preflight
from suite.reference import DEMO_KEYS, ReferenceServer, ReferenceServerError
from suite.report import RunReport, render_summary, write_reports
from suite.selection import RequirementFilter, SelectionError, level_admits, parse_filter
from suite.target import PROFILE_NAMES, TIERS, Target

__all__ = [
    "announce",
    "api",
    "features",
    "pytest_addoption",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_teststatus",
    "pytest_runtest_makereport",
    "pytest_runtest_protocol",
    "pytest_runtestloop",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "target",
    "target_from_config",
]

#: Set by ``conform42 run``: pytest's per-test letters and tracebacks are replaced by ours.
COMPACT_OPTION = "--conform42-compact"


@dataclasses.dataclass
class RunState:
    """What the plugin knows about one conformance run."""

    active: bool = False
    compact: bool = False
    settings: Settings | None = None
    selected: list[Requirement] = dataclasses.field(default_factory=list)
    item_ids: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    tests: dict[str, TestResult] = dataclasses.field(default_factory=dict)
    keys: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    reference: ReferenceServer | None = None
    reference_error: str | None = None
    started: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    done: int = 0
    report: RunReport | None = None
    collect_errors: list[str] = dataclasses.field(default_factory=list)
    #: The client's last request when each running test's setup ended: a failure shows a curl line
    #: only for a request the test itself sent.
    request_before: dict[str, object] = dataclasses.field(default_factory=dict)
    written: list[str] = dataclasses.field(default_factory=list)
    #: The target the preflight checked (models discovered); the ``target`` fixture hands it out.
    target: Target | None = None
    #: What the user must fix (a bad setting, an unreachable target, a refused key): no test runs, the run
    #: ends with exit 2 and this one line.
    usage_error: str | None = None


STATE = pytest.StashKey[RunState]()


# ------------------------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conform42", "conform42 conformance suite")
    group.addoption("--target", default=None,
                    help="base URL of the server under test (env CONFORM42_TARGET); without it the "
                    "bundled reference server is started")
    group.addoption("--token-url", default=None,
                    help="where POST /api/token lives if not on the target: the host's base URL or the "
                    "full endpoint https://HOST/api/token (env CONFORM42_TOKEN_URL)")
    group.addoption("--profile", choices=PROFILE_NAMES, default=None,
                    help="which API the target implements: 42ai (default) or fortytwo")
    for tier in TIERS:
        group.addoption(f"--key-{tier}", default=None,
                        help=f"API key of the {tier} tier (env CONFORM42_KEY_{tier.upper()}); "
                        "without it the tier's tests are Disabled")
    group.addoption("--request-timeout", type=float, default=None,
                    help="seconds before a request without an answer fails (env CONFORM42_TIMEOUT; "
                    "default 30)")
    group.addoption("--chat-model", default=None, help="chat model ID (default: 42-general, or discovered)")
    group.addoption("--embed-model", default=None,
                    help="embedding model ID (default: 42-embed, or discovered)")
    group.addoption("--conform42-config", default=None, metavar="FILE",
                    help="settings file (default: ./conform42.toml if present; env CONFORM42_CONFIG)")
    group.addoption("--level", type=str.lower, choices=LEVEL_NAMES, default=None,
                    help="run requirements of this level and stronger (must < should < may; default may)")
    group.addoption("--gate", type=str.lower, choices=LEVEL_NAMES, default=None,
                    help="failures of this level and stronger make the run NON-CONFORMANT (default must)")
    group.addoption("--requirements", default=None, metavar="EXPR",
                    help='requirements to run, e.g. "AUTH or STREAM-003", "chat and not CHAT-01?"')
    group.addoption("--report", default=None, metavar="DIR",
                    help="write junit.xml, results.json and report.html into DIR")
    group.addoption("--reference-engine", choices=ENGINES, default=None,
                    help="engine of the bundled reference server when no target is given (default vllm)")
    group.addoption("--image-url", default=None, metavar="URL",
                    help="image the vision and pipeline tests send: data:, http:// or https:// "
                    "(env CONFORM42_IMAGE_URL; default a small PNG as a data: URL)")
    group.addoption("--accept-skip", action="append", default=None, metavar="ID",
                    help="a requirement whose Skip the verdict accepts (repeatable or comma-separated; "
                    "env CONFORM42_ACCEPT_SKIP)")
    group.addoption(COMPACT_OPTION, action="store_true", default=False,
                    help="conform42 run's output: no per-test letters or tracebacks, a live progress line")


def _cli_values(config: pytest.Config) -> dict[str, Any]:
    values = {name: config.getoption(f"--{name.replace('_', '-')}")
              for name in ("target", "token_url", "profile", "request_timeout", "chat_model", "embed_model",
                           "level", "gate", "requirements", "reference_engine", "image_url",
                           "accept_skip")}
    values["report_dir"] = config.getoption("--report")
    values["config"] = config.getoption("--conform42-config")
    for tier in TIERS:
        values[f"key_{tier}"] = config.getoption(f"--key-{tier}")
    return values


def _usage_error(config: pytest.Config, message: str) -> None:
    """End the run as a usage error: one line on stderr now, no test runs, exit 2 (the first one wins)."""
    state = config.stash[STATE]
    if state.usage_error is None:
        state.usage_error = message
        print(f"conform42: {message}", file=sys.stderr, flush=True)


def _try_settings(config: pytest.Config) -> Settings | None:
    """The run's settings, or None after reporting the bad one as a usage error."""
    state = config.stash[STATE]
    if state.settings is None and state.usage_error is None:
        try:
            state.settings = resolve_settings(_cli_values(config))
        except (ConfigError, CatalogueError) as exc:
            _usage_error(config, str(exc))
    return state.settings


def _settings(config: pytest.Config) -> Settings:
    settings = _try_settings(config)
    if settings is None:
        raise pytest.UsageError(f"conform42: {config.stash[STATE].usage_error}")
    return settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*ids): the conform42 requirement IDs this test checks")
    state = RunState(compact=bool(config.getoption(COMPACT_OPTION)))
    config.stash[STATE] = state
    config.pluginmanager.register(_CollectErrors(state), "conform42-collect-errors")


def _say(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"conform42: {message}")
    else:
        print(f"conform42: {message}", file=sys.stderr, flush=True)


def announce(config: pytest.Config, message: str) -> None:
    """Print a line during the tests (past pytest's output capture) and keep it as a report note."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            _say(config, message)
    else:
        _say(config, message)
    state = config.stash.get(STATE, None)
    if state is not None:
        state.notes.append(message)


# ----------------------------------------------------------------------------------------- selection


def _requirement_ids(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers(MARKER):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


def _profile_disabled(known: list[Requirement], profile: str) -> str | None:
    if not known or any(profile in r.profiles for r in known):
        return None
    others = sorted({r.profile for r in known})
    return f"profile {profile}: requirement is {'/'.join(others)}-only"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    if not state.compact and not any(item.get_closest_marker(MARKER) for item in items):
        return  # not a conformance run: leave the project's own tests alone
    state.active = True
    settings = _try_settings(config)
    if settings is None:
        return  # reported; pytest_runtestloop runs nothing
    try:
        wanted: RequirementFilter = parse_filter(settings.requirements)
    except SelectionError as exc:
        _usage_error(config, str(exc))
        return
    catalogue = load_catalogue()

    def in_scope(r: Requirement) -> bool:
        return level_admits(settings.level, r.level) and wanted(r)

    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    unknown: set[str] = set()
    for item in items:
        ids = _requirement_ids(item)
        known = [catalogue[i] for i in ids if i in catalogue]
        unknown.update(i for i in ids if i not in catalogue)
        # An untagged test (e.g. a property test) runs unless the user narrowed the run by requirement.
        keep = any(in_scope(r) for r in known) if known else wanted.expression is None
        if not keep:
            deselected.append(item)
            continue
        reason = _profile_disabled(known, settings.profile)
        if reason:
            item.add_marker(pytest.mark.skip(reason=DISABLED_PREFIX + reason))
        kept.append(item)
        state.item_ids[item.nodeid] = ids
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    if unknown:
        state.notes.append(f"tests name requirement IDs not in the catalogue: {', '.join(sorted(unknown))}")
    state.selected = [r for r in catalogue.select(profile=settings.profile) if in_scope(r)]


class _CollectErrors:
    """Remembers collection errors (``conform42 run`` turns pytest's tracebacks off, so we show them).

    A plugin object because ``pytest_collectreport`` gets no config to find the run's state with.
    """

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.state.collect_errors.append(f"{report.nodeid or '(session)'}: {report.longreprtext.strip()}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the bundled reference server if there is no target, then check the target (preflight)."""
    config = session.config
    state = config.stash[STATE]
    if state.usage_error or not state.active or not session.items or config.option.collectonly:
        return
    settings = _settings(config)
    if settings.target is not None:
        state.keys = dict(settings.keys)
    else:
        state.keys = dict(DEMO_KEYS)
        server = ReferenceServer(
            settings.reference_engine,
            progress=lambda message: _say(config, message),
            # Engines at normal priority: the server's default niceness 10 tunes gateway latency, but on
            # a shared machine it lets any other busy process starve vLLM (measured: 1 token/s with one
            # core taken by `yes`), and the verdict must not depend on what else the machine runs.
            extra_args=("--flavour", settings.profile, "--engine-nice", "0"),
        )
        try:
            state.reference = server.__enter__()
        except ReferenceServerError as exc:
            state.reference_error = f"the bundled reference server did not start: {exc}"
            _say(config, state.reference_error)
            # Every test would error the same way; one is enough to show it.
            session.shouldstop = "conform42: the bundled reference server did not start"
            return
        state.notes.append(f"target: the bundled reference server (--engine {settings.reference_engine}), "
                           "demo keys")
    # Only tests that talk to the target need it checked (the plugin's own tests run tagged tests that
    # never do, against a port nobody listens on).
    if any("target" in getattr(item, "fixturenames", ()) for item in session.items):
        _preflight(config, state, settings)
        if state.usage_error:
            return
    _announce(config, state)


def _preflight(config: pytest.Config, state: RunState, settings: Settings) -> None:
    """Check the target and keys (one request each) and discover models; a problem is a usage error."""
    target = _base_target(config)
    given = settings.chat_model is not None and settings.embed_model is not None
    # The bundled reference server serves the documented IDs under either flavour: nothing to discover.
    discover = target.profile == "fortytwo" and settings.target is not None and not given
    result = run_preflight(target, discover=discover, chat_model=settings.chat_model,
                           embed_model=settings.embed_model)
    if not result.ok:
        _usage_error(config, "; ".join(result.problems))
        return
    state.target = result.target
    _say(config, f"preflight: {result.summary}")
    for note in result.notes:
        _say(config, f"preflight: {note}")
    state.notes.extend(result.notes)
    if discover:  # the report says which models a discovered target was tested with
        found = result.target
        state.notes.append(f"models: chat {found.chat_model}, embeddings {found.embed_model or 'none'}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Run no test at all after a usage error (pytest's own loop would run them)."""
    state = session.config.stash[STATE]
    return True if state.usage_error else None


def _announce(config: pytest.Config, state: RunState) -> None:
    """One line before the tests start, so a quiet ``conform42 run`` in CI shows it is working."""
    if state.compact and state.settings is not None:
        s = state.settings
        _say(config, f"running {len(state.item_ids)} tests for {len(state.selected)} requirements "
                     f"({s.profile} profile, {s.level.upper()} and stronger) against "
                     f"{s.target or 'the reference server'}")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.reference is not None:
        state.reference.close()
        state.reference = None


# ------------------------------------------------------------------------------------------ fixtures


def _base_target(config: pytest.Config) -> Target:
    """The Target the settings name (or the bundled reference server), models as given or documented."""
    state = config.stash[STATE]
    settings = _settings(config)
    if state.reference_error:
        raise TargetUnreachable(state.reference_error)
    if settings.target is not None:
        url, keys = settings.target, dict(settings.keys)
    elif state.reference is not None:
        url, keys = state.reference.base_url, dict(DEMO_KEYS)
    else:
        raise pytest.UsageError("conform42: no target; pass --target URL or set CONFORM42_TARGET")
    state.keys = keys
    return Target(
        base_url=url,
        profile="fortytwo" if settings.profile == "fortytwo" else "42ai",
        token_url=settings.token_url,
        keys=keys,
        timeout=settings.request_timeout,
        chat_model=settings.chat_model or "42-general",
        embed_model=settings.embed_model or "42-embed",
        image_url=settings.image_url,
    )


def _build_target(config: pytest.Config) -> Target:
    state = config.stash[STATE]
    if state.target is not None:
        return state.target  # checked by the preflight, models discovered
    settings = _settings(config)
    target = _base_target(config)
    # No preflight ran (e.g. a run whose tests do not use the target until a fixture asks for it here).
    discover = target.profile == "fortytwo" and settings.target is not None
    if discover and (settings.chat_model is None or settings.embed_model is None):
        with Api(target) as client:
            target, note = discover_models(client, target, chat=settings.chat_model,
                                           embed=settings.embed_model)
        if note:
            state.notes.append(note)
        state.notes.append(f"models: chat {target.chat_model}, embeddings {target.embed_model or 'none'}")
    state.target = target
    return target


def target_from_config(config: pytest.Config) -> Target:
    """The Target the options, environment and ``conform42.toml`` describe."""
    return _build_target(config)


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The server under test."""
    return _build_target(pytestconfig)


@pytest.fixture(scope="session")
def api(target: Target) -> Iterator[Api]:
    """The suite's client for the target (timeouts, no retries, task tokens managed)."""
    with Api(target) as client:
        yield client


@pytest.fixture(scope="session")
def features(target: Target, api: Api) -> Features:
    """Optional features of the target: ``features.require("batch")``, ``features.require_embeddings()``."""
    return Features(target, api)


# ------------------------------------------------------------------------------------------ outcomes


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """A live progress line in ``conform42 run`` on a terminal (pytest prints its own otherwise)."""
    state = item.config.stash[STATE]
    reporter: pytest.TerminalReporter | None = item.config.pluginmanager.get_plugin("terminalreporter")
    live = bool(state.compact and state.active and reporter is not None and reporter.isatty)
    if live and reporter is not None:
        ids = ", ".join(state.item_ids.get(item.nodeid, ())) or "-"
        line = f"conform42: [{state.done + 1}/{len(item.session.items)}] {ids}  {item.name}"
        reporter.rewrite(line[: item.config.get_terminal_writer().fullwidth - 1], erase=True)
    try:
        return (yield)
    finally:
        state.done += 1
        if live and reporter is not None and nextitem is None:
            reporter.rewrite("", erase=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = item.config.stash[STATE]
    if state.active and item.nodeid in state.item_ids:
        test = state.tests.setdefault(item.nodeid, TestResult(item.nodeid, state.item_ids[item.nodeid]))
        test.duration_s += report.duration
        client = getattr(item, "funcargs", {}).get("api")
        last = client.last_request if isinstance(client, Api) else None
        if call.when == "setup":
            state.request_before[item.nodeid] = last
        elif last is state.request_before.get(item.nodeid):
            last = None  # sent by an earlier test
        phase = classify(report, call.excinfo, keys=state.keys, last_request=last)
        if phase is not None:
            outcome, reason, detail = phase
            test.record(outcome, reason=reason, failure=detail)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """In compact mode, count outcomes as usual but print nothing per test (the summary says it all)."""
    state = config.stash[STATE]
    if not (state.compact and state.active) or report.nodeid not in state.item_ids:
        return None
    if report.when != "call" and report.passed:
        return "", "", ""
    if report.when != "call" and report.failed:
        return "error", "", ""
    return report.outcome, "", ""


def _session_error(session: pytest.Session, exitstatus: int) -> str | None:
    state = session.config.stash[STATE]
    if state.reference_error:
        return state.reference_error
    if state.collect_errors:
        return f"{len(state.collect_errors)} error(s) while collecting the tests"
    if isinstance(session.shouldfail, str) and "session-timeout" in session.shouldfail:
        return f"the run was stopped: {session.shouldfail}"
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the run was interrupted"
    if exitstatus in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        return f"pytest ended with {pytest.ExitCode(exitstatus).name}"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[STATE]
    if state.usage_error:
        # Said on stderr when it happened; no verdict and no report: nothing was judged.
        session.exitstatus = EXIT_SUITE_ERROR
        return
    if state.compact and state.collect_errors:
        state.active = True  # a suite that cannot even be collected still gets a verdict: INCONCLUSIVE
    if not state.active:
        return
    settings = _settings(session.config)
    results = aggregate(state.selected, state.tests.values())
    verdict = decide_verdict(results, session_error=_session_error(session, exitstatus), gate=settings.gate,
                             accepted_skips=settings.accept_skip)
    target_url = settings.target or (state.reference.base_url if state.reference else "(reference server)")
    state.report = RunReport(
        target=target_url,
        profile=settings.profile,
        level=settings.level,
        config=settings.redacted(),
        started=state.started,
        finished=datetime.now(UTC),
        requirements=results,
        tests=list(state.tests.values()),
        verdict=verdict,
        notes=list(state.notes) + [f"collection error: {e}" for e in state.collect_errors],
    )
    if settings.report_dir is not None:
        try:
            state.written = [str(p) for p in write_reports(state.report, settings.report_dir)]
        except OSError as exc:
            state.notes.append(f"could not write the report into {settings.report_dir}: {exc}")
            session.exitstatus = EXIT_SUITE_ERROR
            return
    session.exitstatus = verdict.exit_code


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    state = config.stash[STATE]
    if not state.active or state.report is None:
        return
    writer = config.get_terminal_writer()
    color = writer.hasmarkup and not os.environ.get("NO_COLOR")
    terminalreporter.write(render_summary(state.report, width=writer.fullwidth, color=color,
                                          written=state.written))
