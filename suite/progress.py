"""The run's progress while it goes: how many tests are done of how many, the area running, the time
since the run started and the failures so far.

At a terminal it is one live line, redrawn every second and erased before the summary; anywhere else (a
CI log) it is a plain line every ``PLAIN_PERIOD_S`` seconds, so a slow run shows it is alive and a hung
one shows where it stands. ``conform42 run -q`` turns it off. The line is drawn from a thread of its own
(a test may wait minutes for a slow target) on a copy of ``conform42 run``'s standard output that the run
hands its pytest child (``PROGRESS_FD_ENV``): pytest captures the child's own standard output while a
test runs, so a line written there would land in the capture. Every other line the plugin prints clears
the live line first (``clear``), so the two never share a line.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from typing import TextIO

__all__ = [
    "LIVE_PERIOD_S",
    "PLAIN_PERIOD_S",
    "PROGRESS_FD_ENV",
    "Progress",
    "elapsed_text",
    "open_progress_stream",
]

#: The environment variable that names the file descriptor of the progress line (set by ``conform42 run``).
PROGRESS_FD_ENV = "CONFORM42_PROGRESS_FD"

#: The live line is redrawn this often (the elapsed time moves on).
LIVE_PERIOD_S = 1.0
#: Not at a terminal: a plain line this often (the issue asks for one at least every 15 s).
PLAIN_PERIOD_S = 10.0


def elapsed_text(seconds: float) -> str:
    """``45 s``, ``3m07s``, ``1h02m``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def open_progress_stream() -> TextIO | None:
    """The stream ``conform42 run`` handed over for the progress line, or None (none handed over, or
    not usable)."""
    fd = os.environ.get(PROGRESS_FD_ENV, "")
    if not fd.isdigit():
        return None
    try:
        return os.fdopen(int(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    except OSError:
        return None


class Progress:
    """Counts the tests and draws the line on ``stream``: live (redrawn in place) when ``live``, else
    plain lines; ``areas``: requirement ID -> area; ``started``: the run's start (monotonic)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int,
        live: bool,
        areas: Mapping[str, str],
        started: float | None = None,
        width: int = 120,
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.errors = 0
        self.area = "-"
        self._stream = stream
        self._live = live
        self._areas = areas
        self._width = max(20, width)
        self._started = time.monotonic() if started is None else started
        self._lock = threading.Lock()
        self._shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conform42-progress", daemon=True)

    @property
    def live(self) -> bool:
        return self._live

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop drawing and erase the live line (the summary comes next)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.clear()
        with contextlib.suppress(OSError):
            self._stream.close()

    def test_started(self, requirement_ids: tuple[str, ...]) -> None:
        areas = dict.fromkeys(self._areas.get(rid, "?") for rid in requirement_ids)
        with self._lock:
            self.area = ", ".join(areas) or "-"
        if self.live:
            self.draw()

    def test_finished(self, *, failed: bool, error: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += failed
            self.errors += error

    def line(self) -> str:
        with self._lock:
            done, total, area, failed, errors = self.done, self.total, self.area, self.failed, self.errors
        percent = 100 * done // total if total else 100
        counts = f"{failed} failed" + (f", {errors} errors" if errors else "")
        elapsed = elapsed_text(time.monotonic() - self._started)
        return f"conform42: {done}/{total} tests ({percent}%), {area} running, {elapsed}, {counts} so far"

    def draw(self) -> None:
        """Redraw the live line, or print a plain one."""
        text = self.line()
        with self._lock, contextlib.suppress(OSError, ValueError):  # a closed or broken stream: no line
            if self._live:
                self._stream.write("\r" + text[: self._width - 1].ljust(self._width - 1))
                self._shown = True
            else:
                self._stream.write(text + "\n")
            self._stream.flush()

    def clear(self) -> None:
        """Erase the live line so another line can be printed in its place."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            if self._live and self._shown:
                self._stream.write("\r" + " " * (self._width - 1) + "\r")
                self._stream.flush()
                self._shown = False

    def _run(self) -> None:
        period = LIVE_PERIOD_S if self.live else PLAIN_PERIOD_S
        while not self._stop.wait(period):
            self.draw()
