"""The run's settings, from three sources: command line > environment > ``conform42.toml``.

The file is found with ``--conform42-config FILE`` (env ``CONFORM42_CONFIG``) or as ``conform42.toml`` in
the working directory. Its string values may name environment variables as ``${NAME}`` (an unset
variable is an error, so a typo cannot silently turn into "no target") or ``${NAME:-default}``
(``${NAME:-}``: empty when unset, e.g. for an optional tier key). Example::

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from suite.catalogue import load_catalogue
from suite.samples import PNG_DATA_URL
from suite.target import PROFILE_NAMES, TIERS

__all__ = [
    "CONFIG_FILE_NAME",
    "ENGINES",
    "IMAGE_URL_SCHEMES",
    "ConfigError",
    "Settings",
    "load_file",
    "resolve_settings",
    "substitute_env",
]

CONFIG_FILE_NAME = "conform42.toml"
ENGINES = ("vllm", "sim")
LEVEL_NAMES = ("must", "should", "may")
DEFAULT_REQUEST_TIMEOUT_S = 30.0
#: What ``--image-url`` may be: inline data, or a URL the target fetches itself.
IMAGE_URL_SCHEMES = ("data:", "http://", "https://")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A setting is missing, malformed or names an unset environment variable; the message says which."""


@dataclass(frozen=True)
class Settings:
    """Everything the plugin needs to know about the run, secrets included (see ``redacted``)."""

    target: str | None = None
    token_url: str | None = None
    profile: str = "42ai"
    keys: Mapping[str, str] = field(default_factory=dict)
    level: str = "may"
    #: The weakest level whose failures make the run NON-CONFORMANT.
    gate: str = "must"
    requirements: str | None = None
    report_dir: Path | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    chat_model: str | None = None
    embed_model: str | None = None
    reference_engine: str = "vllm"
    config_file: Path | None = None
    #: The image the vision and pipeline tests send (``--image-url``).
    image_url: str = PNG_DATA_URL
    #: Requirement IDs whose Skip the verdict accepts (``--accept-skip``), checked against the catalogue.
    accept_skip: tuple[str, ...] = ()

    def redacted(self) -> dict[str, Any]:
        """The settings for a report: keys appear only as which tiers were given."""
        return {
            "target": self.target or "(bundled reference server)",
            "token_url": self.token_url,
            "profile": self.profile,
            "keys": {tier: ("given" if self.keys.get(tier) else "not given") for tier in TIERS},
            "level": self.level,
            "gate": self.gate,
            "requirements": self.requirements,
            "report_dir": str(self.report_dir) if self.report_dir else None,
            "request_timeout_s": self.request_timeout,
            "chat_model": self.chat_model,
            "embed_model": self.embed_model,
            "reference_engine": self.reference_engine if not self.target else None,
            "config_file": str(self.config_file) if self.config_file else None,
            # A data: URL is long and says nothing to a reader of the report; its size does.
            "image_url": self.image_url if not self.image_url.startswith("data:")
            else f"(data: URL, {len(self.image_url)} characters)",
            "accept_skip": list(self.accept_skip),
        }


def substitute_env(text: str, env: Mapping[str, str], *, where: str) -> str:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in ``text`` from ``env``."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set "
                          f"(write ${{{name}:-}} to make it optional)")

    return _VARIABLE.sub(replace, text)


def _substitute_all(data: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(data, str):
        return substitute_env(data, env, where=where)
    if isinstance(data, dict):
        return {k: _substitute_all(v, env, f"{where}: {k}") for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute_all(v, env, where) for v in data]
    return data


_FILE_KEYS = {"target", "token_url", "profile", "keys", "level", "gate", "requirements", "report",
              "request_timeout", "chat_model", "embed_model", "reference_engine", "image_url", "accept_skip"}


def load_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Read a ``conform42.toml`` into a flat mapping (``keys`` stays a table), variables substituted."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(raw) - _FILE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(_FILE_KEYS))})")
    data: dict[str, Any] = _substitute_all(raw, env, str(path))
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or set(keys) - set(TIERS):
        raise ConfigError(f"{path}: [keys] must map tiers ({', '.join(TIERS)}) to API keys")
    return data


def _find_file(explicit: str | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    named = explicit or env.get("CONFORM42_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    default = cwd / CONFIG_FILE_NAME
    return default if default.is_file() else None


def _float(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be > 0, not {value!r}")
    return number


def _choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _http_url(value: str | None, option: str) -> str | None:
    """``value`` if it is an http(s) URL with a host; the run would only fail later, less clearly."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{option} must be an http:// or https:// URL, not {value!r}")
    return value


def _image_url(value: str | None) -> str:
    if value is None:
        return PNG_DATA_URL
    if not value.lower().startswith(IMAGE_URL_SCHEMES):
        raise ConfigError(f"--image-url must be a data:, http:// or https:// URL, not {value[:80]!r}")
    return value


def _accept_skip(value: Any) -> tuple[str, ...]:
    """Requirement IDs from a list (repeated option, TOML array) and/or comma-separated strings."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(f"accept_skip must be requirement IDs (strings), not {value!r}")
    ids = [part.strip().upper() for item in items for part in item.split(",") if part.strip()]
    catalogue = load_catalogue()
    unknown = [i for i in ids if i not in catalogue]
    if unknown:
        raise ConfigError(f"--accept-skip: {', '.join(unknown)} not in the requirement catalogue "
                          "(see `conform42 requirements`)")
    return tuple(dict.fromkeys(ids))


def resolve_settings(
    cli: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
) -> Settings:
    """Merge the sources. ``cli`` holds option values by setting name (None: not given on the command
    line), plus ``config`` for ``--conform42-config``, ``key_<tier>`` for the keys and ``accept_skip`` as
    a list of IDs or comma-separated IDs."""
    env = os.environ if env is None else env
    path = _find_file(cli.get("config"), env, cwd or Path.cwd())
    file = load_file(path, env) if path else {}

    def pick(name: str, env_name: str, file_name: str | None = None) -> Any:
        """CLI, then environment (empty counts as unset), then the file."""
        if cli.get(name) is not None:
            return cli[name]
        if env.get(env_name):
            return env[env_name]
        value = file.get(file_name or name)
        return value if value not in ("", None) else None

    keys: dict[str, str] = {}
    file_keys: dict[str, Any] = file.get("keys", {})
    for tier in TIERS:
        key = cli.get(f"key_{tier}") or env.get(f"CONFORM42_KEY_{tier.upper()}") or file_keys.get(tier)
        if key:
            keys[tier] = str(key)

    timeout = pick("request_timeout", "CONFORM42_TIMEOUT")
    # A repeated option gives a list; an empty one counts as not given, like an unset variable.
    accept_skip = pick("accept_skip", "CONFORM42_ACCEPT_SKIP") or None
    report = pick("report_dir", "CONFORM42_REPORT", "report")
    to_str: Callable[[Any], str | None] = lambda v: None if v is None else str(v)  # noqa: E731
    return Settings(
        target=_http_url(to_str(pick("target", "CONFORM42_TARGET")), "--target"),
        token_url=_http_url(to_str(pick("token_url", "CONFORM42_TOKEN_URL")), "--token-url"),
        profile=_choice(str(pick("profile", "CONFORM42_PROFILE") or "42ai"), "profile", PROFILE_NAMES),
        keys=keys,
        level=_choice(str(pick("level", "CONFORM42_LEVEL") or "may").lower(), "level", LEVEL_NAMES),
        gate=_choice(str(pick("gate", "CONFORM42_GATE") or "must").lower(), "gate", LEVEL_NAMES),
        requirements=to_str(pick("requirements", "CONFORM42_REQUIREMENTS")),
        report_dir=Path(report) if report else None,
        request_timeout=_float(timeout, "request timeout") if timeout is not None
        else DEFAULT_REQUEST_TIMEOUT_S,
        chat_model=to_str(pick("chat_model", "CONFORM42_CHAT_MODEL")),
        embed_model=to_str(pick("embed_model", "CONFORM42_EMBED_MODEL")),
        reference_engine=_choice(str(pick("reference_engine", "CONFORM42_REFERENCE_ENGINE") or "vllm"),
                                 "reference engine", ENGINES),
        config_file=path,
        image_url=_image_url(to_str(pick("image_url", "CONFORM42_IMAGE_URL"))),
        accept_skip=_accept_skip(accept_skip),
    )
