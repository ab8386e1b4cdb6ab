"""What an option's value may be: the parsers and checks the option table (``suite.options``) names.

Two kinds: ``positive`` parses a command-line word (argparse reports its error as a usage error); the
``*_setting`` factories build the check a resolved setting passes, whichever source it came from (command
line, environment or ``conform42.toml``), and raise ``ConfigError`` with a one-line message.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from suite.catalogue import load_catalogue

__all__ = [
    "ENGINES",
    "IMAGE_URL_SCHEMES",
    "LEVEL_NAMES",
    "ConfigError",
    "Convert",
    "accept_skip_setting",
    "choice_setting",
    "http_url_setting",
    "image_url_setting",
    "path_setting",
    "positive",
    "seconds_setting",
    "text_setting",
]

ENGINES = ("vllm", "sim")
LEVEL_NAMES = ("must", "should", "may")
#: What ``--image-url`` may be: inline data, or a URL the target fetches itself.
IMAGE_URL_SCHEMES = ("data:", "http://", "https://")

#: Turns a setting's raw value (a string from the command line or environment, any TOML value from the
#: file; never None) into the value ``Settings`` holds.
Convert = Callable[[Any], Any]


class ConfigError(ValueError):
    """A setting is missing, malformed or names an unset environment variable; the message says which."""


def positive(text: str) -> float:
    """A command-line number of seconds (> 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def text_setting(value: Any) -> str:
    return str(value)


def path_setting(value: Any) -> Path | None:
    return Path(value) if value else None


def seconds_setting(label: str) -> Convert:
    def convert(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{label} must be a number of seconds, not {value!r}") from None
        if number <= 0:
            raise ConfigError(f"{label} must be > 0, not {value!r}")
        return number

    return convert


def choice_setting(label: str, choices: tuple[str, ...], *, lower: bool = False) -> Convert:
    def convert(value: Any) -> str:
        text = str(value).lower() if lower else str(value)
        if text not in choices:
            raise ConfigError(f"{label} must be one of {', '.join(choices)}, not {text!r}")
        return text

    return convert


def http_url_setting(option: str) -> Convert:
    """An http(s) URL with a host; anything else would only fail later, less clearly."""

    def convert(value: Any) -> str:
        text = str(value)
        parts = urlsplit(text)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{option} must be an http:// or https:// URL, not {text!r}")
        return text

    return convert


def image_url_setting(value: Any) -> str:
    text = str(value)
    if not text.lower().startswith(IMAGE_URL_SCHEMES):
        raise ConfigError(f"--image-url must be a data:, http:// or https:// URL, not {text[:80]!r}")
    return text


def accept_skip_setting(value: Any) -> tuple[str, ...]:
    """Requirement IDs from a list (repeated option, TOML array) and/or comma-separated strings."""
    items = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(f"accept_skip must be requirement IDs (strings), not {value!r}")
    ids = [part.strip().upper() for item in items for part in item.split(",") if part.strip()]
    if not ids:
        return ()
    catalogue = load_catalogue()
    unknown = [i for i in ids if i not in catalogue]
    if unknown:
        raise ConfigError(
            f"--accept-skip: {', '.join(unknown)} not in the requirement catalogue "
            "(see `conform42 requirements`)"
        )
    return tuple(dict.fromkeys(ids))
