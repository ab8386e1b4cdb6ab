"""Every option of ``conform42 run`` and of the pytest plugin, as one table (``TABLE``).

A run setting is declared once, as a typed field of ``suite.settings.Settings`` carrying its ``Option``
(``suite.option_spec.setting``); the options that are not settings (``conform42 run`` only, the plugin
only, and ``--config``, which names the file the settings come from) are the entries below. The table is
the settings' options, in field order, then those. It generates (``suite.option_builders``):

- the ``conform42 run`` argparse option (``add_run_options``),
- the pytest option of the plugin (``add_pytest_options``) and how the plugin reads it back
  (``pytest_values``),
- what ``conform42 run`` passes to its pytest child (``child_arguments``, ``child_environment``),
- how ``suite.config.resolve_settings`` finds the value: command line > environment > ``conform42.toml``
  > ``default``, checked by ``convert``.

Where pytest or one of its plugins already owns a spelling (``-k``; pytest-timeout's ``--timeout``), the
entry names the spelling the pytest side uses in ``pytest_flags``; ``conform42 run`` accepts both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from suite.option_spec import Option, setting_options
from suite.option_values import positive
from suite.settings import Settings

__all__ = [
    "COMPACT",
    "CONFIG",
    "DEFAULT_SESSION_TIMEOUT_S",
    "DEFAULT_TEST_TIMEOUT_S",
    "OTHER_OPTIONS",
    "QUIET",
    "TABLE",
    "OptionTable",
]

DEFAULT_TEST_TIMEOUT_S = 120.0
DEFAULT_SESSION_TIMEOUT_S = 3600.0

#: The options that are not fields of ``Settings``.
OTHER_OPTIONS: tuple[Option, ...] = (
    # Read before every other setting (it names the file they come from): resolve_settings handles it.
    Option(
        "config",
        ("--config",),
        aliases=("--conform42-config",),
        pytest_flags=("--conform42-config",),
        metavar="FILE",
        env="CONFORM42_CONFIG",
        forward=lambda path: str(Path(path).resolve()),
        help="settings file (default ./conform42.toml if present)",
    ),
    Option(
        "test_timeout",
        ("--test-timeout",),
        scope="cli",
        parse=positive,
        metavar="S",
        default=DEFAULT_TEST_TIMEOUT_S,
        child=lambda s: ["-o", f"timeout={s:g}"],
        help=f"seconds a test may take; a test over it fails (default {DEFAULT_TEST_TIMEOUT_S:g})",
    ),
    Option(
        "session_timeout",
        ("--session-timeout",),
        scope="cli",
        parse=positive,
        metavar="S",
        default=DEFAULT_SESSION_TIMEOUT_S,
        child=lambda s: ["--session-timeout", f"{s:g}"],
        help=f"seconds the whole run may take (default {DEFAULT_SESSION_TIMEOUT_S:g})",
    ),
    Option(
        "exitfirst",
        ("-x", "--exitfirst"),
        scope="cli",
        action="flag",
        default=False,
        child=lambda on: ["-x"] if on else [],
        help="stop after the first failing test",
    ),
    Option(
        "maxfail",
        ("--maxfail",),
        scope="cli",
        parse=int,
        metavar="N",
        child=lambda n: [] if n is None else ["--maxfail", str(n)],
        help="stop after N failing tests",
    ),
    # The child's verbosity, traceback style and compact mode all follow it: run_command writes them.
    Option(
        "verbose",
        ("-v", "--verbose"),
        scope="cli",
        action="count",
        default=0,
        help="list every test (-vv: with tracebacks)",
    ),
    # Suite development: run other tests than suite.conformance.
    Option("tests", ("--tests",), scope="cli", nargs="+", metavar="PATH", hidden=True, help="test paths"),
    Option(
        "quiet",
        ("-q", "--quiet"),
        scope="cli",
        action="flag",
        default=False,
        child=lambda on: ["--conform42-quiet"] if on else [],
        help="no progress line while the tests run (the summary only)",
    ),
    Option(
        "compact",
        ("--conform42-compact",),
        scope="pytest",
        action="flag",
        default=False,
        help="conform42 run's output: no per-test letters or tracebacks, a progress line",
    ),
    Option(
        "conform42_quiet",
        ("--conform42-quiet",),
        scope="pytest",
        action="flag",
        default=False,
        help="conform42 run -q: no progress line",
    ),
)


@dataclass(frozen=True)
class OptionTable:
    """The options ``settings``' fields declare, then ``others``: what every consumer is built from.

    ``TABLE`` is the one of this suite; a table over a subclass of ``Settings`` shows in the tests that
    a new field is all a new setting needs.
    """

    settings: type[Settings]
    others: tuple[Option, ...] = OTHER_OPTIONS

    @cached_property
    def options(self) -> tuple[Option, ...]:
        return (*setting_options(self.settings), *self.others)

    @cached_property
    def setting(self) -> tuple[Option, ...]:
        """Both command lines, passed to the child, resolved by ``resolve_settings``."""
        return tuple(o for o in self.options if o.scope == "setting")

    @cached_property
    def cli(self) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.scope in ("setting", "cli"))

    @cached_property
    def pytest(self) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.scope in ("setting", "pytest"))

    @cached_property
    def file_keys(self) -> frozenset[str]:
        """The top-level keys of ``conform42.toml`` (``keys`` is the table of the tiers' API keys)."""
        return frozenset(o.toml.split(".")[0] for o in self.setting if o.toml)


TABLE = OptionTable(Settings)
CONFIG = next(o for o in OTHER_OPTIONS if o.name == "config")
COMPACT = next(o for o in OTHER_OPTIONS if o.name == "compact")
QUIET = next(o for o in OTHER_OPTIONS if o.name == "conform42_quiet")
