"""One harness option (no Locust import): its own module so the modules that contribute options
(``loadtests.workload``) and the table that collects them (``loadtests.options``) import it without a
circle."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["HarnessOption", "read_options"]

#: How configargparse (Locust's parser) reads a flag from the environment.
_TRUE_WORDS = ("true", "yes", "1")


@dataclass(frozen=True)
class HarnessOption:
    """One harness option: ``--<name with dashes>`` on the command line, ``LOCUST_<NAME>`` in the
    environment (Locust's convention), ``name`` in the parsed options."""

    name: str
    help: str
    default: Any = ""
    #: Parses the command-line word (argparse ``type``); None: the word itself.
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    #: Present or not (``store_true``).
    flag: bool = False
    #: Masked in Locust's web UI.
    secret: bool = False

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "LOCUST_" + self.name.upper()


def read_options(
    options: Iterable[HarnessOption], args: Sequence[str], env: Mapping[str, str]
) -> argparse.Namespace:
    """These options as Locust will read them, before Locust runs: from the command line, else the
    environment, else their defaults. Other words on the command line are left alone. Abbreviations
    count for nothing, as on Locust's command line (``loadtests.options.add_arguments`` switches them
    off there). Locust's config files (``locust.conf``, ``--config``) are not read here: the options
    read before Locust (user counts, sweeps, ``--repeat``) belong on the command line or in the
    environment, as the loadtests README says."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for option in options:
        word = env.get(option.env)
        if option.flag:
            default = option.default or (word or "").lower() in _TRUE_WORDS
            parser.add_argument(option.flag_name, action="store_true", default=default)
        else:
            parse = option.parse or str
            parser.add_argument(option.flag_name, type=parse, default=parse(word) if word else option.default)
    known, _ = parser.parse_known_args(list(args))
    return known
