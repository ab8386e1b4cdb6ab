"""loadtests.transport: geventhttpclient pinned to the release whose internals it uses, and those internals.

The pooled-socket check answers like geventhttpclient's without yielding to other greenlets (a yield
there sits between a request's start stamp and its write). Everything that imports the transport runs
in a child process: it imports gevent, which the pytest process is kept free of.
"""

from __future__ import annotations

import importlib.metadata
import textwrap
import tomllib

from tests.loadtests.conftest import run_child_check
from tests.support.server_process import REPO_ROOT


def _pinned_version() -> str:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in pyproject["project"]["dependencies"] if d.split("=")[0].strip() == "geventhttpclient"]
    assert len(pins) == 1 and "==" in pins[0], f"pyproject.toml must pin geventhttpclient exactly: {pins}"
    return str(pins[0].split("==", 1)[1].strip())


def test_installed_geventhttpclient_is_the_pinned_release():
    pinned, installed = _pinned_version(), importlib.metadata.version("geventhttpclient")
    assert installed == pinned, (
        f"geventhttpclient {installed} is installed, pyproject.toml pins {pinned}. loadtests/transport.py "
        "reaches into its private internals: check them against the new release, then move the pin and "
        "transport.GEVENTHTTPCLIENT_VERSION together (tests/loadtests/test_transport.py checks both)."
    )


INTERNALS = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import socket, sys
    import gevent
    from loadtests import transport

    pinned = sys.argv[1]
    assert transport.GEVENTHTTPCLIENT_VERSION == pinned, (
        f"transport.GEVENTHTTPCLIENT_VERSION is {transport.GEVENTHTTPCLIENT_VERSION}, pyproject pins {pinned}"
    )

    server = socket.create_server(("127.0.0.1", 0))
    PARTS = (b'data: {"id": "s1"}\\n\\nda', b"ta: [DONE]\\n\\n")

    def serve():
        peer, _ = server.accept()
        peer.recv(65536)
        peer.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: text/event-stream\\r\\n"
                     b"Transfer-Encoding: chunked\\r\\n\\r\\n")
        for part in PARTS:
            peer.sendall(b"%x\\r\\n%s\\r\\n" % (len(part), part))
        peer.sendall(b"0\\r\\n\\r\\n")
        peer.recv(1)  # hold the connection open until the client is done

    gevent.spawn(serve)
    client = transport.open_client(f"http://127.0.0.1:{server.getsockname()[1]}", concurrency=1)

    missing = [f"HTTPClient.{name}" for name in ("_connection_pool",) if not hasattr(client, name)]
    pool = client._connection_pool
    missing += [
        f"ConnectionPool.{name}"
        for name in ("_is_socket_alive", "_socket_queue", "get_socket", "return_socket")
        if not hasattr(pool, name)
    ]
    assert not missing, f"geventhttpclient internals gone: {missing}"
    assert pool._is_socket_alive is transport.idle_socket_alive, "the pool keeps its yielding check"
    assert pool._socket_queue.empty(), "a fresh pool has no idle socket"
    transport.connect_ahead(client)
    assert not pool._socket_queue.empty(), "connect_ahead leaves a connected socket in the pool"

    resp = client.request("GET", "/")
    missing = [
        f"HTTPSocketPoolResponse.{name}"
        for name in ("_sock", "_body_buffer", "feed", "message_complete", "release")
        if not hasattr(resp, name)
    ]
    assert not missing, f"geventhttpclient internals gone: {missing}"
    assert isinstance(resp._body_buffer, bytearray), type(resp._body_buffer)
    lines = [line for line, _ in transport.response_lines(resp)]
    # Lines without their newline: the socket path ran, not the readline fallback (which keeps it).
    assert lines == [b'data: {"id": "s1"}', b"", b"data: [DONE]", b""], lines
    print("ok")
""")


def test_the_geventhttpclient_internals_the_transport_uses_exist():
    run_child_check(INTERNALS, _pinned_version())


IDLE_SOCKET = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import select, socket
    import greenlet
    from loadtests.transport import idle_socket_alive, open_client

    switches = []
    greenlet.settrace(lambda event, args: switches.append(event))

    server = socket.create_server(("127.0.0.1", 0))
    client = open_client(f"http://127.0.0.1:{server.getsockname()[1]}", concurrency=1)
    sock = client._connection_pool.get_socket()
    peer, _ = server.accept()

    switches.clear()
    alive = idle_socket_alive(sock)
    assert alive is True, "an idle connected socket is alive"
    assert switches == [], f"the check switched greenlets: {switches}"

    peer.close()  # the server closes the keep-alive connection: the idle socket turns readable
    assert select.select([sock], [], [], 5.0)[0], "the server's close never reached the client"
    assert idle_socket_alive(sock) is False, "a socket the server closed is not alive"
    sock.close()
    assert idle_socket_alive(sock) is False, "a closed socket is not alive"
    print("ok")
""")


def test_pooled_socket_check_never_yields_and_still_sees_closed_sockets():
    run_child_check(IDLE_SOCKET)
