"""The option table (``suite.options``) drives every consumer: ``conform42 run``'s parser, the plugin's
pytest options, the child's command line and environment, and ``resolve_settings``.

Each test walks the whole table, so an option added as one entry is checked without a new test; an
option whose checks reject the generic sample value gets one in ``SAMPLES``. The tests that take a
``table`` also run on ``ONE_MORE``: the suite's settings plus two, each declared as one field the way
ARCHITECTURE.md's "Adding an option" says, and nothing else; that they pass there shows that one entry
is all a new setting needs.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from suite.config import FILE_KEYS, Settings, resolve_settings
from suite.option_builders import (
    add_pytest_options,
    add_run_options,
    child_arguments,
    child_environment,
    pytest_values,
)
from suite.option_spec import Option, declared_options, setting
from suite.option_values import positive, seconds_setting
from suite.options import TABLE, OptionTable
from suite.run_command import add_run_parser, build_pytest_command


@dataclasses.dataclass(frozen=True)
class _OneMore(Settings):
    """The suite's settings and two more, one of them a secret."""

    max_wait: float = setting(
        Option(
            "max_wait",
            ("--max-wait",),
            parse=positive,
            metavar="S",
            default=5.0,
            env="CONFORM42_MAX_WAIT",
            toml="max_wait",
            convert=seconds_setting("max wait"),
            help="seconds to wait for X (default 5)",
        )
    )
    org_token: str | None = setting(
        Option(
            "org_token",
            ("--org-token",),
            metavar="TOKEN",
            secret=True,
            env="CONFORM42_ORG_TOKEN",
            toml="org_token",
            help="the organisation's token",
        )
    )


ONE_MORE = OptionTable(_OneMore)
TABLES = pytest.mark.parametrize("table", [TABLE, ONE_MORE], ids=["suite", "one-more"])

#: Command-line words the options' checks accept where the generic sample would not do.
SAMPLES = {
    "target": "http://target.example",
    "token_url": "https://auth.example/api/token",
    "request_timeout": "7",
    "image_url": "https://img.example/chart.png",
    "accept_skip": "LIMIT-001",
    "max_wait": "7",
}


def _sample(option: Option) -> str:
    if option.name in SAMPLES:
        return SAMPLES[option.name]
    if option.choices:
        return next(choice for choice in option.choices if choice != option.default)
    return f"sample-{option.name}"


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_run_parser(parser.add_subparsers())
    return parser


def _run_help() -> str:
    commands = argparse.ArgumentParser().add_subparsers()
    add_run_parser(commands)
    return str(commands.choices["run"].format_help())


def _every_setting_on_the_command_line(table: OptionTable, config_file: Path) -> list[str]:
    argv = []
    for option in table.setting:
        argv += [option.flags[0], str(config_file) if option.name == "config" else _sample(option)]
    return argv


def _run_options(table: OptionTable) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_run_options(parser, table)
    return parser


class _PytestLike:
    """What ``add_pytest_options`` needs of a pytest option group, on a plain argparse parser."""

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser()
        self.dests: dict[str, str] = {}

    def addoption(self, *flags: str, **kwargs: Any) -> None:
        action = self.parser.add_argument(*flags, **kwargs)
        self.dests.update(dict.fromkeys(flags, action.dest))


def _field(settings: Settings, option: Option) -> Any:
    assert option.field is not None
    mapping, _, name = option.field.rpartition(".")
    return getattr(settings, mapping)[name] if mapping else getattr(settings, name)


def test_every_run_option_is_on_the_conform42_run_parser():
    args = _run_parser().parse_args(["run"])
    for option in TABLE.cli:
        assert hasattr(args, option.name), option.name
    help_text = _run_help()
    for option in TABLE.cli:
        if not option.hidden:
            for flag in (*option.flags, *option.aliases):
                assert flag in help_text, flag


def test_every_plugin_option_is_a_pytest_option_of_this_run(pytestconfig):
    # The plugin is loaded in this run too (entry point pytest11): getoption fails on an unknown name.
    values = pytest_values(pytestconfig.getoption)
    assert set(values) == {o.name for o in TABLE.pytest}
    for option in TABLE.pytest:
        expected = None if option.scope == "setting" else option.default
        assert values[option.name] == expected, option.name


def test_aliases_reach_the_canonical_option():
    args = _run_parser().parse_args(["run", "--request-timeout", "5", "--conform42-config", "c.toml"])
    assert (args.request_timeout, args.config) == (5.0, "c.toml")
    args = _run_parser().parse_args(["run", "--timeout", "6", "--config", "d.toml", "-k", "AUTH"])
    assert (args.request_timeout, args.config, args.requirements) == (6.0, "d.toml", "AUTH")


@TABLES
def test_settings_round_trip_through_the_child_command_line(tmp_path, table):
    config_file = tmp_path / "given.toml"
    config_file.write_text("", encoding="utf-8")
    args = _run_options(table).parse_args(_every_setting_on_the_command_line(table, config_file))
    in_parent = resolve_settings(vars(args), {}, cwd=tmp_path, table=table)

    command = child_arguments(vars(args), table)
    child = _PytestLike()
    add_pytest_options(child, table)
    parsed, _ = child.parser.parse_known_args(command)
    cli = pytest_values(lambda flag: getattr(parsed, child.dests[flag]), table)
    env = child_environment(vars(args), table)
    in_child = resolve_settings(cli, env, cwd=tmp_path, table=table)

    assert type(in_child) is type(in_parent) is table.settings
    assert in_child == in_parent
    for option in table.setting:
        if option.secret:
            assert _sample(option) not in command, f"{option.name} must not be on the command line"
            assert env[option.env or ""] == _sample(option)
        if option.field is not None:
            assert _field(in_parent, option) != option.default, f"{option.name} kept its default"
    assert in_parent.config_file == config_file


def test_the_run_command_gives_its_child_the_settings_arguments(tmp_path):
    config_file = tmp_path / "given.toml"
    config_file.write_text("", encoding="utf-8")
    args = _run_parser().parse_args(["run", *_every_setting_on_the_command_line(TABLE, config_file)])
    command = build_pytest_command(args, tmp_path / "pytest.ini")
    expected = child_arguments(vars(args))
    assert command[len(command) - len(expected) :] == expected


def _each_setting(*, where: str) -> list[Any]:
    """Each setting of the suite's table with an ``env`` or ``toml`` (``where``), then each that
    ``ONE_MORE`` adds, with its table."""
    added = [o for o in ONE_MORE.setting if o not in TABLE.setting]
    return [
        pytest.param(table, option, id=f"{prefix}{option.name}")
        for table, options, prefix in ((TABLE, TABLE.setting, ""), (ONE_MORE, added, "one-more-"))
        for option in options
        if option.field and getattr(option, where)
    ]


@pytest.mark.parametrize("table, option", _each_setting(where="env"))
def test_an_environment_variable_overrides_the_default(tmp_path, table, option):
    assert option.env is not None
    settings = resolve_settings({}, {option.env: _sample(option)}, cwd=tmp_path, table=table)
    assert _field(settings, option) == option.convert(_sample(option)) != option.default


@pytest.mark.parametrize("table, option", _each_setting(where="toml"))
def test_a_file_key_overrides_the_default(tmp_path, table, option):
    assert option.toml is not None
    file_table, _, key = option.toml.rpartition(".")
    line = f'{key} = "{_sample(option)}"\n'
    (tmp_path / "conform42.toml").write_text(
        f"[{file_table}]\n{line}" if file_table else line, encoding="utf-8"
    )
    from_file = resolve_settings({}, {}, cwd=tmp_path, table=table)
    assert _field(from_file, option) == option.convert(_sample(option)) != option.default


def test_the_file_knows_exactly_the_table_keys():
    assert {o.toml.split(".")[0] for o in TABLE.setting if o.toml} == FILE_KEYS
    assert "keys" in FILE_KEYS and "report" in FILE_KEYS
    assert ONE_MORE.file_keys == FILE_KEYS | {"max_wait", "org_token"}


@TABLES
def test_the_table_has_one_entry_per_name_and_spelling(table):
    names = [o.name for o in table.options]
    assert len(names) == len(set(names))
    cli_flags = [f for o in table.cli for f in (*o.flags, *o.aliases)]
    assert len(cli_flags) == len(set(cli_flags))
    pytest_flags = [f for o in table.pytest for f in o.pytest_spellings]
    assert len(pytest_flags) == len(set(pytest_flags))
    # Spellings pytest itself or pytest-timeout own never reach the plugin.
    assert not {"-k", "--timeout", "--config"} & set(pytest_flags)


def test_a_report_shows_every_setting_and_never_a_secret(tmp_path):
    env = {"CONFORM42_ORG_TOKEN": "tok-secret", "CONFORM42_KEY_PRO": "sk-secret"}
    settings = resolve_settings({"max_wait": 2.5}, env, cwd=tmp_path, table=ONE_MORE)
    redacted = settings.redacted()
    assert (redacted["max_wait"], redacted["org_token"]) == (2.5, "given")
    assert redacted["keys"] == {"free": "not given", "pro": "given", "internal": "not given"}
    assert "secret" not in repr(redacted)
    names = {f.name for f in dataclasses.fields(Settings)} - {"request_timeout"} | {"request_timeout_s"}
    assert set(resolve_settings({}, {}, cwd=tmp_path).redacted()) == names


def test_every_settings_field_is_declared_by_its_options():
    """Only ``config_file`` (what ``--config`` found) is filled by ``resolve_settings`` itself."""
    plain = [f.name for f in dataclasses.fields(Settings) if not declared_options(f)]
    assert plain == ["config_file"]


def test_a_settings_field_declares_a_setting_only():
    with pytest.raises(ValueError, match="scope setting"):
        setting(Option("quiet", ("--quiet",), scope="cli", help="less output"))
