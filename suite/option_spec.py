"""What one option of ``conform42 run`` and of the pytest plugin is (``Option``), and how a run setting is
declared: once, as a typed field of ``suite.settings.Settings`` that carries its option (``setting``).

The option table (``suite.options``) reads the options off those fields (``setting_options``) and adds
the options that are not settings; everything else is built from the table (``suite.option_builders``,
``suite.config.resolve_settings``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from suite.option_values import Convert, text_setting

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Action",
    "Option",
    "Scope",
    "declared_options",
    "setting",
    "setting_entries",
    "setting_options",
]

#: ``setting``: a run setting, on both command lines, passed to the child, resolved by ``resolve_settings``;
#: ``cli``: ``conform42 run`` only (``child`` says what the child gets instead);
#: ``pytest``: the plugin only (``conform42 run`` sets it on its child itself).
Scope = Literal["setting", "cli", "pytest"]
#: ``store``: one value; ``append``: repeatable, a list; ``flag``: present or not; ``count``: -v -v.
Action = Literal["store", "append", "flag", "count"]

#: The metadata key of a ``Settings`` field that holds the options it declares.
_OPTIONS = "conform42.options"


@dataclasses.dataclass(frozen=True)
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
    #: Where ``Settings`` holds it (``keys.free``: an entry of the ``keys`` mapping). Never written by
    #: hand: ``setting_options`` fills it in from the field that declares the option. None: not a field
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
    #: A report shows only whether it was given.
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


def _declare(options: Mapping[str | None, Option]) -> Mapping[str, Any]:
    """A field's metadata: the options it declares (of scope ``setting``; their ``field`` is filled in
    by ``setting_options``)."""
    for option in options.values():
        if option.scope != "setting" or option.field is not None:
            raise ValueError(f"{option.name}: a Settings field declares an option of scope setting, no field")
    return {_OPTIONS: options}


def setting(option: Option) -> Any:
    """A ``Settings`` field that is the run setting ``option``; its default is the option's.

    ``Any``, like ``dataclasses.field``: the field's annotation gives the type (``x: float = setting(...)``).
    """
    return dataclasses.field(default=option.default, metadata=_declare({None: option}))


def setting_entries(options: Mapping[str, Option]) -> Any:
    """A ``Settings`` mapping field with one run setting per key (``keys``: one per tier); it holds the
    entries some source gave, nothing for the others."""
    entries: dict[str | None, Option] = {entry: option for entry, option in options.items()}
    return dataclasses.field(default_factory=dict, metadata=_declare(entries))


def declared_options(field: dataclasses.Field[Any]) -> Mapping[str | None, Option]:
    """The options a field declares, by the entry each fills (None: the field itself); empty for a field
    that is no setting."""
    options: Mapping[str | None, Option] = field.metadata.get(_OPTIONS, {})
    return options


def setting_options(settings: type[DataclassInstance]) -> tuple[Option, ...]:
    """The options the fields of ``settings`` declare, in field order, each with its ``field``."""
    return tuple(
        dataclasses.replace(option, field=field.name if entry is None else f"{field.name}.{entry}")
        for field in dataclasses.fields(settings)
        for entry, option in declared_options(field).items()
    )
