"""loadtests.rxstamp: a token is timed when it reached the machine, not when the harness read it."""

from __future__ import annotations

import select
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from loadtests import rxstamp


def _wait_readable(sock: socket.socket, size: int) -> None:
    """Until ``size`` bytes wait in ``sock`` (peeked, not consumed): loopback delivery may be deferred."""
    deadline = time.monotonic() + 5.0
    while len(sock.recv(size, socket.MSG_PEEK)) < size:
        assert time.monotonic() < deadline, f"{size} bytes never arrived"
        time.sleep(0.001)  # poll the socket until the bytes are there


def _enable_stamps(client: socket.socket, peer: socket.socket) -> None:
    """Enable stamps on ``client`` and wait until the kernel really stamps its segments.

    Linux turns receive stamping on machine-wide through a static key flipped by a deferred work item,
    so the first segments after the first ``SO_TIMESTAMPNS`` may still come unstamped (``recv`` then
    falls back to the read time). Probe bytes are sent until one comes back with a stamp.
    """
    assert rxstamp.enable(client)
    deadline = time.monotonic() + 5.0
    while True:
        peer.sendall(b"x")
        assert select.select([client], [], [], 5.0)[0]
        _data, ancillary, _flags, _address = client.recvmsg(1, socket.CMSG_SPACE(16))
        if ancillary:
            return
        assert time.monotonic() < deadline, "the kernel never stamped a received segment"
        time.sleep(0.01)  # the deferred work that turns stamping on needs the CPU


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname(), timeout=5)
        peer, _ = server.accept()
        with client, peer:
            yield client, peer


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_TIMESTAMPNS is Linux's")
def test_bytes_that_waited_in_the_socket_are_timed_at_their_arrival(pair):
    client, peer = pair
    _enable_stamps(client, peer)
    peer.sendall(b"data: token\n\n")
    # Loopback delivery can be deferred to ksoftirqd on a busy machine: wait until the bytes are
    # readable (select does not consume them), so "arrived by" is true however loaded the machine is.
    assert select.select([client], [], [], 5.0)[0]
    arrived_by = time.perf_counter()
    time.sleep(0.2)  # the harness is busy elsewhere: the event waits in the socket
    data, stamp = rxstamp.recv(client, 65536)
    read_at = time.perf_counter()
    assert data == b"data: token\n\n"
    assert stamp <= arrived_by + 0.005 < read_at - 0.15  # the arrival, not the read


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_TIMESTAMPNS is Linux's")
def test_the_newest_segment_of_a_read_gives_its_time(pair):
    client, peer = pair
    _enable_stamps(client, peer)
    peer.sendall(b"a\n\n")
    _wait_readable(client, 3)
    time.sleep(0.1)  # the two segments arrive 0.1 s apart
    before_second = time.perf_counter()
    peer.sendall(b"b\n\n")
    after_second = time.perf_counter()
    _wait_readable(client, 6)
    data, stamp = rxstamp.recv(client, 65536)
    assert data == b"a\n\nb\n\n"
    # Bounded by the second send itself (the first segment arrived 0.1 s before it).
    assert before_second - 0.002 <= stamp <= after_second + 0.002


def test_without_a_kernel_stamp_the_read_time_is_used(pair):
    client, peer = pair  # timestamps never enabled: recvmsg brings no ancillary data
    peer.sendall(b"x")
    _wait_readable(client, 1)
    before = time.perf_counter()
    data, stamp = rxstamp.recv(client, 65536)
    assert data == b"x"
    assert before <= stamp <= time.perf_counter()


def test_tls_sockets_are_not_stamped():
    class FakeTls:
        def cipher(self) -> None: ...

        def recvmsg(self, *args: object) -> None: ...

        def setsockopt(self, *args: object) -> None:
            raise AssertionError("must not be called on a TLS socket")

    assert rxstamp.enable(FakeTls()) is False
