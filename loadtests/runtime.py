"""Per-process state shared by the users and the event hooks: the settings and the collector.

No Locust import: the hooks fill it at ``init`` / ``test_start``, the users read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from loadtests.collector import Collector
from loadtests.options import HarnessConfig
from loadtests.request_log import RequestLog

__all__ = ["STATE", "State"]


@dataclass
class State:
    config: HarnessConfig | None = None
    collector: Collector = field(default_factory=Collector)
    #: kinds switched off for the rest of the run (the target does not offer them), per tier; "*" is all.
    disabled: dict[str, set[str]] = field(default_factory=dict)
    #: the record per request a capacity sweep or an HTML report keeps (told of each request sent and
    #: settled, so requests still in flight at the end are counted); None: not kept
    request_log: RequestLog | None = None
    #: wall-clock time from which the users send nothing new (a capacity sweep's drain: the requests
    #: in flight finish and are measured); None: never
    drain_at: float | None = None

    def draining(self) -> bool:
        return self.drain_at is not None and time.time() >= self.drain_at

    def is_disabled(self, tier: str, kind: str) -> bool:
        return kind in self.disabled.get("*", set()) or kind in self.disabled.get(tier, set())

    def disable(self, tier: str, kind: str, notice: str) -> None:
        self.disabled.setdefault(tier, set()).add(kind)
        self.collector.notices.add(notice)

    def reset(self) -> None:
        self.collector = Collector()
        self.disabled = {}
        self.request_log = None
        self.drain_at = None


STATE = State()
