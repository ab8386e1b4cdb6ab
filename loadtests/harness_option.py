"""One harness option (no Locust import): its own module so the modules that contribute options
(``loadtests.workload``) and the table that collects them (``loadtests.options``) import it without a
circle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["HarnessOption"]


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
