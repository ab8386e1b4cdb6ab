"""Per-process state shared by the users and the event hooks: the settings and the collector.

No Locust import: the hooks fill it at ``init`` / ``test_start``, the users read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtests.collector import Collector
from loadtests.options import HarnessConfig

__all__ = ["STATE", "State"]


@dataclass
class State:
    config: HarnessConfig | None = None
    collector: Collector = field(default_factory=Collector)
    #: kinds switched off for the rest of the run (the target does not offer them), per tier; "*" is all.
    disabled: dict[str, set[str]] = field(default_factory=dict)

    def is_disabled(self, tier: str, kind: str) -> bool:
        return kind in self.disabled.get("*", set()) or kind in self.disabled.get(tier, set())

    def disable(self, tier: str, kind: str, notice: str) -> None:
        self.disabled.setdefault(tier, set()).add(kind)
        self.collector.notices.add(notice)

    def reset(self) -> None:
        self.collector = Collector()
        self.disabled = {}


STATE = State()
