"""Every option of ``conform42 run`` and of the pytest plugin, as one table.

One ``Option`` entry generates (``suite.option_builders``):

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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from suite.option_values import (
    ENGINES,
    LEVEL_NAMES,
    Convert,
    accept_skip_setting,
    choice_setting,
    http_url_setting,
    image_url_setting,
    path_setting,
    positive,
    seconds_setting,
    text_setting,
)
from suite.samples import PNG_DATA_URL
from suite.target import PROFILE_NAMES, TIERS

__all__ = [
    "CLI_OPTIONS",
    "COMPACT",
    "CONFIG",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "DEFAULT_SESSION_TIMEOUT_S",
    "DEFAULT_TEST_TIMEOUT_S",
    "OPTIONS",
    "PYTEST_OPTIONS",
    "SETTING_OPTIONS",
    "Action",
    "Option",
    "Scope",
]

DEFAULT_REQUEST_TIMEOUT_S = 30.0
DEFAULT_TEST_TIMEOUT_S = 120.0
DEFAULT_SESSION_TIMEOUT_S = 3600.0

#: ``setting``: a run setting, on both command lines, passed to the child, resolved by ``resolve_settings``;
#: ``cli``: ``conform42 run`` only (``child`` says what the child gets instead);
#: ``pytest``: the plugin only (``conform42 run`` sets it on its child itself).
Scope = Literal["setting", "cli", "pytest"]
#: ``store``: one value; ``append``: repeatable, a list; ``flag``: present or not; ``count``: -v -v.
Action = Literal["store", "append", "flag", "count"]


@dataclass(frozen=True)
class Option:
    """One option. ``name`` is its argparse dest and its key in ``resolve_settings``' command-line map."""

    name: str
    #: The ``conform42 run`` spellings (the canonical one, README's, first).
    flags: tuple[str, ...]
    help: str
    scope: Scope = "setting"
    action: Action = "store"
    #: Parses a command-line word (argparse ``type``); a bad word is a usage error.
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    #: The resolved setting when no source gives one (``setting``), else the argparse default.
    default: Any = None
    env: str | None = None
    #: The key in ``conform42.toml``; ``table.key`` for a value in a ``[table]``.
    toml: str | None = None
    #: Where ``Settings`` holds it (``keys.free``: an entry of the ``keys`` mapping); None: not a field
    #: filled by the generic resolution.
    field: str | None = None
    #: Checks and converts a resolved value from any source (never called with None).
    convert: Convert = text_setting
    #: Older ``conform42 run`` spellings that keep working; each is its own argparse option, so a bad
    #: value's message names the spelling the user typed.
    aliases: tuple[str, ...] = ()
    #: The pytest spellings, when pytest or a plugin of it owns one of ``flags``.
    pytest_flags: tuple[str, ...] | None = None
    #: Reaches the child through its environment (``env``), never its command line, which other users of
    #: the machine can read; given empty, it counts as not given, like an empty environment variable.
    secret: bool = False
    #: How a ``cli`` option's value reaches the child (pytest arguments); a setting's goes as itself.
    child: Callable[[Any], list[str]] | None = None
    #: How a setting's value is written on the child's command line.
    forward: Callable[[Any], str] = str
    nargs: str | None = None
    hidden: bool = False

    @property
    def pytest_spellings(self) -> tuple[str, ...]:
        return self.pytest_flags or self.flags

    @property
    def help_text(self) -> str:
        sources = [f"env {self.env}"] if self.env else []
        if self.toml:
            sources.append(f"conform42.toml: {self.toml}")
        return f"{self.help} [{'; '.join(sources)}]" if sources else self.help


def _key(tier: str) -> Option:
    return Option(
        f"key_{tier}",
        (f"--key-{tier}",),
        metavar="KEY",
        secret=True,
        env=f"CONFORM42_KEY_{tier.upper()}",
        toml=f"keys.{tier}",
        field=f"keys.{tier}",
        help=f"API key of the {tier} tier (better in the environment); without it the tier's "
        "tests are Disabled",
    )


OPTIONS: tuple[Option, ...] = (
    Option(
        "target",
        ("--target",),
        metavar="URL",
        env="CONFORM42_TARGET",
        toml="target",
        field="target",
        convert=http_url_setting("--target"),
        help="base URL of the server under test; without it the bundled reference server is started",
    ),
    Option(
        "token_url",
        ("--token-url",),
        metavar="URL",
        env="CONFORM42_TOKEN_URL",
        toml="token_url",
        field="token_url",
        convert=http_url_setting("--token-url"),
        help="where POST /api/token lives if not on the target: the host's base URL or the full "
        "endpoint (https://HOST/api/token)",
    ),
    Option(
        "profile",
        ("--profile",),
        choices=PROFILE_NAMES,
        default="42ai",
        env="CONFORM42_PROFILE",
        toml="profile",
        field="profile",
        convert=choice_setting("profile", PROFILE_NAMES),
        help="API the target implements (default 42ai)",
    ),
    *(_key(tier) for tier in TIERS),
    Option(
        "level",
        ("--level",),
        parse=str.lower,
        choices=LEVEL_NAMES,
        default="may",
        env="CONFORM42_LEVEL",
        toml="level",
        field="level",
        convert=choice_setting("level", LEVEL_NAMES, lower=True),
        help="run requirements of this level and stronger (must < should < may; default may: all)",
    ),
    Option(
        "gate",
        ("--gate",),
        parse=str.lower,
        choices=LEVEL_NAMES,
        default="must",
        env="CONFORM42_GATE",
        toml="gate",
        field="gate",
        convert=choice_setting("gate", LEVEL_NAMES, lower=True),
        help="failures of this level and stronger make the run NON-CONFORMANT (default must)",
    ),
    # pytest's own -k selects by test name; the suite selects by requirement.
    Option(
        "requirements",
        ("--requirements", "-k"),
        pytest_flags=("--requirements",),
        metavar="EXPR",
        env="CONFORM42_REQUIREMENTS",
        toml="requirements",
        field="requirements",
        help='which requirements, e.g. "AUTH or STREAM-003", "chat and not CHAT-01?"',
    ),
    Option(
        "report_dir",
        ("--report",),
        metavar="DIR",
        env="CONFORM42_REPORT",
        toml="report",
        field="report_dir",
        convert=path_setting,
        help="write junit.xml, results.json and report.html into DIR",
    ),
    # pytest-timeout owns pytest's --timeout (seconds a test may take: --test-timeout here).
    Option(
        "request_timeout",
        ("--timeout",),
        aliases=("--request-timeout",),
        pytest_flags=("--request-timeout",),
        parse=positive,
        metavar="S",
        default=DEFAULT_REQUEST_TIMEOUT_S,
        env="CONFORM42_TIMEOUT",
        toml="request_timeout",
        field="request_timeout",
        convert=seconds_setting("request timeout"),
        help=f"seconds a request may take (default {DEFAULT_REQUEST_TIMEOUT_S:g})",
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
        "chat_model",
        ("--chat-model",),
        metavar="ID",
        env="CONFORM42_CHAT_MODEL",
        toml="chat_model",
        field="chat_model",
        help="chat model (default 42-general; fortytwo: discovered)",
    ),
    Option(
        "embed_model",
        ("--embed-model",),
        metavar="ID",
        env="CONFORM42_EMBED_MODEL",
        toml="embed_model",
        field="embed_model",
        help="embedding model (default 42-embed; fortytwo: discovered)",
    ),
    Option(
        "reference_engine",
        ("--reference-engine",),
        choices=ENGINES,
        default="vllm",
        env="CONFORM42_REFERENCE_ENGINE",
        toml="reference_engine",
        field="reference_engine",
        convert=choice_setting("reference engine", ENGINES),
        help="engine of the bundled reference server when no --target (default vllm)",
    ),
    Option(
        "image_url",
        ("--image-url",),
        metavar="URL",
        default=PNG_DATA_URL,
        env="CONFORM42_IMAGE_URL",
        toml="image_url",
        field="image_url",
        convert=image_url_setting,
        help="image the vision and pipeline tests send: data:, http:// or https:// (default a small "
        "PNG as a data: URL)",
    ),
    Option(
        "accept_skip",
        ("--accept-skip",),
        action="append",
        metavar="ID",
        default=(),
        env="CONFORM42_ACCEPT_SKIP",
        toml="accept_skip",
        field="accept_skip",
        convert=accept_skip_setting,
        help="a requirement whose Skip the verdict accepts (repeatable or comma-separated)",
    ),
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
        "compact",
        ("--conform42-compact",),
        scope="pytest",
        action="flag",
        default=False,
        help="conform42 run's output: no per-test letters or tracebacks, a live progress line",
    ),
)

SETTING_OPTIONS = tuple(o for o in OPTIONS if o.scope == "setting")
CLI_OPTIONS = tuple(o for o in OPTIONS if o.scope in ("setting", "cli"))
PYTEST_OPTIONS = tuple(o for o in OPTIONS if o.scope in ("setting", "pytest"))
CONFIG = next(o for o in OPTIONS if o.name == "config")
COMPACT = next(o for o in OPTIONS if o.name == "compact")
