"""What is built from the option table (``suite.options``): the ``conform42 run`` parser, the plugin's
pytest options and their values, and the command line and environment of ``conform42 run``'s child.

Each builder takes the table (default: the suite's ``TABLE``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from suite.option_spec import Action, Option
from suite.options import TABLE, OptionTable

__all__ = ["add_pytest_options", "add_run_options", "child_arguments", "child_environment", "pytest_values"]

_ARGPARSE_ACTIONS: Mapping[Action, str] = {
    "store": "store",
    "append": "append",
    "flag": "store_true",
    "count": "count",
}


class _AddOption(Protocol):
    def __call__(self, *flags: str, **kwargs: Any) -> Any: ...


def _register(add: _AddOption, option: Option, flags: Sequence[str], **extra: Any) -> None:
    kwargs: dict[str, Any] = {"action": _ARGPARSE_ACTIONS[option.action], "help": option.help_text, **extra}
    if option.hidden:
        kwargs["help"] = argparse.SUPPRESS
    if option.action in ("store", "append"):
        kwargs.update(type=option.parse, choices=option.choices, metavar=option.metavar)
    if option.nargs is not None:
        kwargs["nargs"] = option.nargs
    add(*flags, **kwargs)


def add_run_options(parser: argparse.ArgumentParser, table: OptionTable = TABLE) -> None:
    """The ``conform42 run`` options. A setting's default stays None here: None means "not given on the
    command line", so the environment and the file get their turn."""
    for option in table.cli:
        default = None if option.scope == "setting" else option.default
        _register(parser.add_argument, option, option.flags, dest=option.name, default=default)
        for alias in option.aliases:
            _register(
                parser.add_argument,
                option,
                (alias,),
                dest=option.name,
                default=default,
                help=f"the same as {option.flags[0]}",
            )


def add_pytest_options(group: Any, table: OptionTable = TABLE) -> None:
    """The plugin's options, on a ``pytest.OptionGroup`` (not imported: only pytest's side needs it)."""
    for option in table.pytest:
        default = None if option.scope == "setting" else option.default
        _register(group.addoption, option, option.pytest_spellings, default=default)


def pytest_values(getoption: Callable[[str], Any], table: OptionTable = TABLE) -> dict[str, Any]:
    """The plugin's option values by ``name`` (``getoption`` is ``pytest.Config.getoption``)."""
    return {option.name: getoption(option.pytest_spellings[0]) for option in table.pytest}


def child_arguments(values: Mapping[str, Any], table: OptionTable = TABLE) -> list[str]:
    """The pytest arguments ``conform42 run`` gives its child for ``values`` (by option name).

    Secrets are left out (``child_environment``); ``verbose`` and ``tests`` shape the whole command line
    and are written by ``run_command`` itself.
    """
    arguments: list[str] = []
    for option in table.cli:
        value = values.get(option.name)
        if option.child is not None:
            arguments += option.child(value)
        elif option.scope == "setting" and not option.secret and value is not None:
            flag = option.pytest_spellings[0]
            for item in value if option.action == "append" else [value]:
                arguments += [flag, option.forward(item)]
    return arguments


def child_environment(values: Mapping[str, Any], table: OptionTable = TABLE) -> dict[str, str]:
    """The secrets among ``values``, as the environment variables the child reads them from."""
    return {
        option.env: str(values[option.name])
        for option in table.setting
        if option.secret and option.env and values.get(option.name)
    }
