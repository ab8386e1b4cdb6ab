"""The harness's pooled-socket check answers like geventhttpclient's, without yielding to other greenlets.

A yield there sat between a request's start stamp and its write (TTFT p99 of 3-10 ms at 100 streams).
Runs in a child process: loadtests.users imports Locust, which monkey-patches the interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.server_process import REPO_ROOT

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import socket, time
    import greenlet
    from loadtests.users import _client, _idle_socket_alive

    switches = []
    greenlet.settrace(lambda event, args: switches.append(event))

    server = socket.create_server(("127.0.0.1", 0))
    client = _client(f"http://127.0.0.1:{server.getsockname()[1]}", concurrency=1)
    pool = client._connection_pool
    assert pool._is_socket_alive is _idle_socket_alive, "the pool keeps its yielding check"
    sock = pool.get_socket()
    peer, _ = server.accept()

    switches.clear()
    alive = _idle_socket_alive(sock)
    assert alive is True, "an idle connected socket is alive"
    assert switches == [], f"the check switched greenlets: {switches}"

    peer.close()  # the server closes the keep-alive connection: the idle socket turns readable
    time.sleep(0.05)
    assert _idle_socket_alive(sock) is False, "a socket the server closed is not alive"
    sock.close()
    assert _idle_socket_alive(sock) is False, "a closed socket is not alive"
    print("ok")
""")


def test_pooled_socket_check_never_yields_and_still_sees_closed_sockets():
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr
