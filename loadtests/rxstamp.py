"""When bytes reached this machine, not when the load generator got round to reading them.

At 100 concurrent streams one Locust process handles thousands of SSE events a second on one core; an
event that arrives while the process is busy with another waits in the socket, and a clock read after
``recv`` returns puts that wait into the token's TTFT or ITL. Linux stamps every received TCP segment
(``SO_TIMESTAMPNS``) and hands the stamp of the newest segment a read consumed to ``recvmsg`` as ancillary
data, so the arrival time is known whatever the process was doing. Where that is not available (other
systems, TLS sockets) the time ``recv`` returned is used, as before.

The kernel stamp is wall-clock time (``CLOCK_REALTIME``); it is turned into the ``perf_counter`` scale by
measuring how long ago it was on the wall clock, right after the read.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

__all__ = ["enable", "recv"]

#: Linux's value (Python exposes the constant only on some builds); other systems use the read time.
_LINUX = sys.platform.startswith("linux") and hasattr(socket, "CMSG_SPACE")
_SO_TIMESTAMPNS: int | None = getattr(socket, "SO_TIMESTAMPNS", 35 if _LINUX else None)
_TIMESPEC = struct.Struct("@ll")  # struct timespec: seconds and nanoseconds, both C longs
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
#: A stamp further back than this is not trusted (wall clock stepped meanwhile): use the read time.
_MAX_LAG_S = 5.0


def enable(sock: Any) -> bool:
    """Ask the kernel to stamp what ``sock`` receives; ``False`` where it cannot (then use ``sock.recv``)."""
    if _SO_TIMESTAMPNS is None or not hasattr(sock, "recvmsg") or hasattr(sock, "cipher"):
        # TLS sockets (which have ``cipher``) refuse recvmsg: the bytes they return are decrypted records.
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except (OSError, TypeError, ValueError):
        return False
    return True


def recv(sock: Any, size: int) -> tuple[bytes, float]:
    """One read of at most ``size`` bytes and when its newest byte arrived, on the ``perf_counter`` scale.

    ``sock`` must have had ``enable`` return ``True``. Without a stamp in the answer (the kernel gives
    none for an end-of-stream read) the time the read returned is used.
    """
    data, ancillary, _flags, _address = sock.recvmsg(size, _ANCILLARY)
    # Wall clock first: if the process is preempted between the two reads, the stamp errs late (towards
    # the read time, as without kernel stamps), never early.
    wall_ns = time.time_ns()
    now = time.perf_counter()
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            lag = (wall_ns - (seconds * 1_000_000_000 + nanoseconds)) / 1e9
            if 0.0 <= lag <= _MAX_LAG_S:
                return data, now - lag
    return data, now
