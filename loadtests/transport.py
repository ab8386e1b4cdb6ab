"""geventhttpclient, used below its public surface for timing accuracy. Imports gevent, not Locust.

The LLM calls go through geventhttpclient's ``HTTPClient`` (the client under Locust's FastHttpUser)
directly rather than through ``FastHttpSession``: the start is stamped just before the request is
written, a stream is read line by line as it arrives (``FastResponse.iter_content`` waits for whole
blocks), and the per-request bookkeeping of FastHttpSession is not paid twice.

Three places reach into geventhttpclient's internals: the pool's idle-socket check is replaced
(``open_client``), the pool's queue is looked at to connect before the start stamp
(``connect_ahead``), and a response's socket and parser buffer are read directly
(``response_lines``). Those internals are private to geventhttpclient and may change in any release,
so pyproject.toml pins the version below exactly and tests/loadtests/test_transport.py fails when the
installed version differs or an internal is gone.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from typing import Any

import gevent.monkey  # type: ignore[import-untyped]
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPSocketPoolResponse

from loadtests import rxstamp
from loadtests.failures import Unanswered
from loadtests.stream_parser import LineSplitter

__all__ = [
    "GEVENTHTTPCLIENT_VERSION",
    "connect_ahead",
    "idle_socket_alive",
    "open_client",
    "response_lines",
]

#: The geventhttpclient release whose internals this module uses; pyproject.toml pins the same.
GEVENTHTTPCLIENT_VERSION = "2.6.1"

_unpatched_poll = gevent.monkey.get_original("select", "poll")
_POLLIN = getattr(select, "POLLIN", 1)


def idle_socket_alive(sock: Any) -> bool:
    """geventhttpclient's check of a pooled keep-alive socket, without a yield to other greenlets.

    The pool asks, for every request, whether its idle socket is readable (a readable idle socket was
    closed by the server). It asks through the ``select`` that gevent patched in, which with a zero
    timeout still does ``gevent.sleep(0)``: every other ready greenlet runs before this request is
    written, after its start was stamped, which puts their run time into every TTFT
    (docs/benchmarks.md has the size). The unpatched ``poll`` asks the same question of the
    kernel and returns at once (and, unlike ``select``, has no 1024-descriptor limit).
    """
    try:
        if sock is None or sock.fileno() < 0:
            return False
        poller = _unpatched_poll()
        poller.register(sock.fileno(), _POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def open_client(url: str, **options: Any) -> HTTPClient:
    """``HTTPClient.from_url`` whose pool checks idle sockets with ``idle_socket_alive``."""
    client = HTTPClient.from_url(url, **options)
    pool = getattr(client, "_connection_pool", None)
    if pool is not None and hasattr(pool, "_is_socket_alive"):
        pool._is_socket_alive = idle_socket_alive
    return client


def connect_ahead(client: HTTPClient) -> None:
    """Connect now when the pool has no idle connection, so TCP set-up is not timed as TTFT.

    Only when no idle connection waits: the check is a cheap look at the pool's queue.
    """
    pool = client._connection_pool
    if pool._socket_queue.empty():
        pool.return_socket(pool.get_socket())


def response_lines(resp: HTTPSocketPoolResponse) -> Iterator[tuple[bytes, float]]:
    """The body's lines, each with the time the read that delivered it got its bytes.

    Reads the socket directly and takes everything the HTTP parser decoded at once, instead of
    ``readline`` (a copy and a front-delete of the buffer per line): cheaper per token, and every line
    of one read gets that read's time, not the time its parsing reached it. That time is the kernel's
    receive stamp where the system gives one (``loadtests.rxstamp``), so a token that waited in the
    socket while this process served other streams is still timed at its arrival; else the time the
    read returned. Uses geventhttpclient's response internals (``_sock``, ``feed``, ``_body_buffer``);
    falls back to ``readline`` without them.
    """
    perf = time.perf_counter
    buf = getattr(resp, "_body_buffer", None)
    if not isinstance(buf, bytearray) or not hasattr(resp, "_sock"):
        while line := resp.readline(b"\n"):
            yield line, perf()
        return
    lines = LineSplitter()
    now = perf()  # for what arrived together with the headers
    stamped = resp._sock is not None and rxstamp.enable(resp._sock)
    while True:
        if buf:
            data = bytes(buf)
            del buf[:]
            for line in lines.split(data):
                yield line, now
        if resp.message_complete:
            rest = lines.rest()
            if rest:
                yield rest, now
            return
        sock = resp._sock
        if sock is None:
            raise Unanswered("the connection closed before the end of the stream")
        try:
            if stamped:
                chunk, now = rxstamp.recv(sock, 65536)
            else:
                chunk = sock.recv(65536)
                now = perf()
        except BaseException:
            resp.release()
            raise
        if not chunk:
            resp.release()
            raise Unanswered("the connection closed before the end of the stream")
        resp.feed(chunk)
