"""conform42 load harness: Locust users per tier, LLM metrics, open-loop load and promise checks.

The package root and the pure modules (``metrics``, ``promises``, ``collector``, ``report``,
``options``, ``stream_parser``, ``tokens``, ``outcomes``) never import Locust, which monkey-patches
the process with gevent on import; the users (``users``), hooks (``hooks``) and the locustfile do,
and the calls (``calls``, ``transport``) use gevent. Run it with ``python -m loadtests`` or
``locust -f loadtests/locustfile.py`` (loadtests/README.md).
"""

from __future__ import annotations

from loadtests.collector import Collector
from loadtests.metrics import Histogram, StreamTiming, stream_timing
from loadtests.promises import (
    TIER_LIMITS,
    Overlap,
    Violation,
    batch_violation,
    find_overlaps,
    status_violation,
)
from loadtests.report import Thresholds, summarise

__all__ = [
    "TIER_LIMITS",
    "Collector",
    "Histogram",
    "Overlap",
    "StreamTiming",
    "Thresholds",
    "Violation",
    "batch_violation",
    "find_overlaps",
    "status_violation",
    "stream_timing",
    "summarise",
]
