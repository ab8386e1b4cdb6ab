"""``Settings``: every run setting once, as a typed field that carries its option (``setting``).

A field is the whole declaration of a run setting: its type (for mypy and the plugin's code), its
``conform42 run`` and pytest spellings, environment variable, ``conform42.toml`` key, default, checks and
help. The option table (``suite.options``) reads the options off these fields, and
``suite.config.resolve_settings`` fills them: command line > environment > ``conform42.toml`` > default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite.option_spec import Option, declared_options, setting, setting_entries
from suite.option_values import (
    ENGINES,
    LEVEL_NAMES,
    accept_skip_setting,
    choice_setting,
    http_url_setting,
    image_url_setting,
    path_setting,
    positive,
    seconds_setting,
)
from suite.samples import PNG_DATA_URL
from suite.target import PROFILE_NAMES, TIERS

__all__ = ["DEFAULT_REQUEST_TIMEOUT_S", "Settings"]

DEFAULT_REQUEST_TIMEOUT_S = 30.0

#: A report's name for a setting, where it is not the field's.
_REPORT_NAMES = {"request_timeout": "request_timeout_s"}


def _key(tier: str) -> Option:
    return Option(
        f"key_{tier}",
        (f"--key-{tier}",),
        metavar="KEY",
        secret=True,
        env=f"CONFORM42_KEY_{tier.upper()}",
        toml=f"keys.{tier}",
        help=f"API key of the {tier} tier (better in the environment); without it the tier's "
        "tests are Disabled",
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the plugin needs to know about the run, secrets included (see ``redacted``)."""

    target: str | None = setting(
        Option(
            "target",
            ("--target",),
            metavar="URL",
            env="CONFORM42_TARGET",
            toml="target",
            convert=http_url_setting("--target"),
            help="base URL of the server under test; without it the bundled reference server is started",
        )
    )
    token_url: str | None = setting(
        Option(
            "token_url",
            ("--token-url",),
            metavar="URL",
            env="CONFORM42_TOKEN_URL",
            toml="token_url",
            convert=http_url_setting("--token-url"),
            help="where POST /api/token lives if not on the target: the host's base URL or the full "
            "endpoint (https://HOST/api/token)",
        )
    )
    profile: str = setting(
        Option(
            "profile",
            ("--profile",),
            choices=PROFILE_NAMES,
            default="42ai",
            env="CONFORM42_PROFILE",
            toml="profile",
            convert=choice_setting("profile", PROFILE_NAMES),
            help="API the target implements (default 42ai)",
        )
    )
    #: The API key of each tier some source gave.
    keys: Mapping[str, str] = setting_entries({tier: _key(tier) for tier in TIERS})
    level: str = setting(
        Option(
            "level",
            ("--level",),
            parse=str.lower,
            choices=LEVEL_NAMES,
            default="may",
            env="CONFORM42_LEVEL",
            toml="level",
            convert=choice_setting("level", LEVEL_NAMES, lower=True),
            help="run requirements of this level and stronger (must < should < may; default may: all)",
        )
    )
    #: The weakest level whose failures make the run NON-CONFORMANT.
    gate: str = setting(
        Option(
            "gate",
            ("--gate",),
            parse=str.lower,
            choices=LEVEL_NAMES,
            default="must",
            env="CONFORM42_GATE",
            toml="gate",
            convert=choice_setting("gate", LEVEL_NAMES, lower=True),
            help="failures of this level and stronger make the run NON-CONFORMANT (default must)",
        )
    )
    # pytest's own -k selects by test name; the suite selects by requirement.
    requirements: str | None = setting(
        Option(
            "requirements",
            ("--requirements", "-k"),
            pytest_flags=("--requirements",),
            metavar="EXPR",
            env="CONFORM42_REQUIREMENTS",
            toml="requirements",
            help='which requirements, e.g. "AUTH or STREAM-003", "chat and not CHAT-01?"',
        )
    )
    report_dir: Path | None = setting(
        Option(
            "report_dir",
            ("--report",),
            metavar="DIR",
            env="CONFORM42_REPORT",
            toml="report",
            convert=path_setting,
            help="write junit.xml, results.json and report.html into DIR",
        )
    )
    # pytest-timeout owns pytest's --timeout (seconds a test may take: --test-timeout here).
    request_timeout: float = setting(
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
            convert=seconds_setting("request timeout"),
            help=f"seconds a request may take (default {DEFAULT_REQUEST_TIMEOUT_S:g})",
        )
    )
    chat_model: str | None = setting(
        Option(
            "chat_model",
            ("--chat-model",),
            metavar="ID",
            env="CONFORM42_CHAT_MODEL",
            toml="chat_model",
            help="chat model (default 42-general; fortytwo: discovered)",
        )
    )
    embed_model: str | None = setting(
        Option(
            "embed_model",
            ("--embed-model",),
            metavar="ID",
            env="CONFORM42_EMBED_MODEL",
            toml="embed_model",
            help="embedding model (default 42-embed; fortytwo: discovered)",
        )
    )
    reference_engine: str = setting(
        Option(
            "reference_engine",
            ("--reference-engine",),
            choices=ENGINES,
            default="vllm",
            env="CONFORM42_REFERENCE_ENGINE",
            toml="reference_engine",
            convert=choice_setting("reference engine", ENGINES),
            help="engine of the bundled reference server when no --target (default vllm)",
        )
    )
    #: The settings file the other settings came from (``--config``: ``suite.options``), if any.
    config_file: Path | None = None
    #: The image the vision and pipeline tests send.
    image_url: str = setting(
        Option(
            "image_url",
            ("--image-url",),
            metavar="URL",
            default=PNG_DATA_URL,
            env="CONFORM42_IMAGE_URL",
            toml="image_url",
            convert=image_url_setting,
            help="image the vision and pipeline tests send: data:, http:// or https:// (default a small "
            "PNG as a data: URL)",
        )
    )
    #: Requirement IDs whose Skip the verdict accepts, checked against the catalogue.
    accept_skip: tuple[str, ...] = setting(
        Option(
            "accept_skip",
            ("--accept-skip",),
            action="append",
            metavar="ID",
            default=(),
            env="CONFORM42_ACCEPT_SKIP",
            toml="accept_skip",
            convert=accept_skip_setting,
            help="a requirement whose Skip the verdict accepts (repeatable or comma-separated)",
        )
    )

    def redacted(self) -> dict[str, Any]:
        """The settings for a report, one entry a field: a secret appears only as given or not given."""
        shown = {
            _REPORT_NAMES.get(field.name, field.name): _shown(field, getattr(self, field.name))
            for field in dataclasses.fields(self)
        }
        shown["target"] = self.target or "(bundled reference server)"
        if self.target:
            shown["reference_engine"] = None  # no reference server is started
        # A data: URL is long and says nothing to a reader of the report; its size does.
        if self.image_url.startswith("data:"):
            shown["image_url"] = f"(data: URL, {len(self.image_url)} characters)"
        return shown


def _shown(field: dataclasses.Field[Any], value: Any) -> Any:
    """How a report shows a field's value: each declared entry of a mapping, secrets as given or not."""
    options = declared_options(field)
    if options and None not in options:
        return {entry: _shown_value(option, value.get(entry)) for entry, option in options.items()}
    return _shown_value(options.get(None), value)


def _shown_value(option: Option | None, value: Any) -> Any:
    if option is not None and option.secret:
        return "given" if value else "not given"
    if isinstance(value, Path):
        return str(value)
    return list(value) if isinstance(value, tuple) else value
