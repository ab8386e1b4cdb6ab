"""The path between the suite and a proved server: an intermediary in front of it, a busy machine beside it.

Shared by the planted faults and the planted liberties (``prove.py --via/--busy``, the liberties' own
``intermediary`` and ``busy``), so a fault can be proved on exactly the path a liberty is proved on.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from typing import Literal

from tests.support.nginx_proxy import NginxProxy
from tests.support.slow_proxy import SlowProxy

__all__ = ["INTERMEDIARIES", "Intermediary", "busy_machine", "through"]

Intermediary = Literal["slow_proxy", "nginx"]
INTERMEDIARIES: tuple[Intermediary, ...] = ("slow_proxy", "nginx")


@contextlib.contextmanager
def busy_machine(enabled: bool = True) -> Iterator[None]:
    """``yes > /dev/null`` for the length of the block: one core taken, as by a build beside the server."""
    if not enabled:
        yield
        return
    proc = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def through(intermediary: str | None, upstream: str) -> Iterator[str]:
    """The base URL the suite should use: ``upstream`` itself, or that of ``intermediary`` in front of it."""
    if intermediary is None:
        yield upstream
        return
    if intermediary not in INTERMEDIARIES:
        raise ValueError(f"unknown intermediary {intermediary!r}; known: {', '.join(INTERMEDIARIES)}")
    proxy = SlowProxy(upstream) if intermediary == "slow_proxy" else NginxProxy(upstream)
    with proxy:
        yield proxy.base_url
