"""The run's settings, from three sources: command line > environment > ``conform42.toml`` > default.

Which settings exist, their environment variables, file keys, defaults and checks are declared once, on
the fields of ``Settings`` (``suite.settings``), and read through the option table (``suite.options``);
this module reads the file and merges the sources.

The file is found with ``--config FILE`` (pytest: ``--conform42-config``; env ``CONFORM42_CONFIG``) or
as ``conform42.toml`` in the working directory. Its string values may name environment variables as
``${NAME}`` (an unset variable is an error, so a typo cannot silently turn into "no target") or
``${NAME:-default}`` (``${NAME:-}``: empty when unset, e.g. for an optional tier key). Example::

    target = "https://api.example.com"
    token_url = "https://auth.example.com"
    profile = "42ai"            # or "fortytwo"
    level = "should"            # must | should | may
    requirements = "AUTH or STREAM"
    report = "reports"
    request_timeout = 30
    image_url = "https://example.com/chart.png"   # default: a small PNG as a data: URL
    accept_skip = ["LIMIT-001"]  # skipped MUSTs the verdict may accept (requirement IDs)
    [keys]
    free = "${MY_FREE_KEY}"
    pro = "${MY_PRO_KEY:-}"
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite.option_spec import Option
from suite.option_values import ENGINES, IMAGE_URL_SCHEMES, LEVEL_NAMES, ConfigError
from suite.options import CONFIG, TABLE, OptionTable
from suite.settings import Settings
from suite.target import TIERS

__all__ = [
    "CONFIG_FILE_NAME",
    "ENGINES",
    "FILE_KEYS",
    "IMAGE_URL_SCHEMES",
    "LEVEL_NAMES",
    "ConfigError",
    "Settings",
    "load_file",
    "resolve_settings",
    "substitute_env",
]

CONFIG_FILE_NAME = "conform42.toml"
#: The top-level keys of ``conform42.toml`` (``keys`` is the table of the tiers' API keys).
FILE_KEYS = TABLE.file_keys

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(text: str, env: Mapping[str, str], *, where: str) -> str:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in ``text`` from ``env``."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable {name} is not set (write ${{{name}:-}} to make it optional)"
        )

    return _VARIABLE.sub(replace, text)


def _substitute_all(data: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(data, str):
        return substitute_env(data, env, where=where)
    if isinstance(data, dict):
        return {k: _substitute_all(v, env, f"{where}: {k}") for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute_all(v, env, where) for v in data]
    return data


def load_file(path: Path, env: Mapping[str, str], known: frozenset[str] = FILE_KEYS) -> dict[str, Any]:
    """Read a ``conform42.toml`` with the top-level keys ``known`` into a flat mapping (``keys`` stays a
    table), variables substituted."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    data: dict[str, Any] = _substitute_all(raw, env, str(path))
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or set(keys) - set(TIERS):
        raise ConfigError(f"{path}: [keys] must map tiers ({', '.join(TIERS)}) to API keys")
    return data


def _find_file(explicit: str | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    named = explicit or (env.get(CONFIG.env) if CONFIG.env else None)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    default = cwd / CONFIG_FILE_NAME
    return default if default.is_file() else None


def _file_value(file: Mapping[str, Any], key: str | None) -> Any:
    if key is None:
        return None
    table, _, name = key.rpartition(".")
    holder = file.get(table, {}) if table else file
    return holder.get(name) if isinstance(holder, Mapping) else None


def _pick(option: Option, cli: Mapping[str, Any], env: Mapping[str, str], file: Mapping[str, Any]) -> Any:
    """The command line, then the environment (empty counts as unset), then the file; None if none."""
    value = cli.get(option.name)
    if value is not None and not (option.secret and value == ""):
        return value
    if option.env and env.get(option.env):
        return env[option.env]
    value = _file_value(file, option.toml)
    return value if value not in ("", None) else None


def resolve_settings(
    cli: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    table: OptionTable = TABLE,
) -> Settings:
    """Merge the sources into ``table.settings``. ``cli`` holds command-line values by option name
    (``suite.options``; None: not given), e.g. ``config`` for ``--config``, ``key_<tier>`` for the keys and
    ``accept_skip`` as a list of IDs or comma-separated IDs."""
    env = os.environ if env is None else env
    path = _find_file(cli.get(CONFIG.name), env, cwd or Path.cwd())
    file = load_file(path, env, table.file_keys) if path else {}
    fields: dict[str, Any] = {}
    for option in table.setting:
        if option.field is None:
            continue
        raw = _pick(option, cli, env, file)
        value = option.default if raw is None else option.convert(raw)
        mapping, _, entry = option.field.rpartition(".")
        if not mapping:
            fields[entry] = value
        elif value is not None:  # a mapping holds only what was given, e.g. the keys of some tiers
            fields.setdefault(mapping, {})[entry] = value
    return table.settings(**fields, config_file=path)
