"""Times as a reader takes them in: ``4 min 21 s`` for a duration, ``2026-11-22T08:00:00Z`` for a moment."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["human_duration", "utc_iso"]


def human_duration(seconds: float) -> str:
    """``0.4 s``, ``12.5 s``, ``4 min 21 s``, ``1 h 2 min 3 s``: tenths only where they still matter."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    return f"{minutes} min {secs} s"


def utc_iso(moment: datetime) -> str:
    """The moment in UTC, ISO 8601 to the second with a ``Z``; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
