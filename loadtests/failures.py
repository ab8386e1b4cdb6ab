"""The two ways a harness request fails; pure, shared by the transport, the stream parser and the users.

Locust's failure table shows these by class name and message.
"""

from __future__ import annotations

__all__ = ["RequestFailed", "Unanswered"]


class RequestFailed(Exception):
    """A request that did not get the answer it should have (shown in Locust's failure table)."""


class Unanswered(RequestFailed):
    """No complete answer at all: also booked as a never-answered promise violation."""
