"""A slow Python gateway, like the ones people put in front of LLM servers, for the planted liberties.

    python -m tests.support.slow_proxy --upstream http://127.0.0.1:8042 --port 0 --port-file F

It is deliberately ordinary, not broken: it forwards every request (method, path, query, headers,
body) to ``--upstream`` after a random pause of up to ``--max-delay`` seconds (default 0.5: auth,
routing, logging, a queue), and relays the answer. An event stream is not passed through as bytes: the
gateway parses every event with its own SSE parser and writes it out again (``data: ...`` and a blank
line), as a gateway that inspects or meters events does. Each relayed event costs synchronous CPU work
proportional to the streams in flight (``--cpu-per-event`` seconds per stream), on one event loop, so
under load the loop falls behind: requests wait to be read and events leave late. When the client goes
away the upstream request is closed too, as any proxy does.

:class:`SlowProxy` runs it as a child process for the length of a ``with`` (free port, health through
the proxy, terminate then kill), like ``server_process.ServerProcess``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from suite.process import ServerSupervisor

__all__ = ["SlowProxy", "main"]

#: Headers that belong to one hop (RFC 9110 section 7.6.1) or that the relay recomputes.
HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host"}
)
RELAYED_AWAY = HOP | {"content-length", "content-encoding"}


class _Gateway:
    def __init__(self, upstream: str, max_delay: float, cpu_per_event: float, timeout: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.max_delay = max_delay
        self.cpu_per_event = cpu_per_event
        self.timeout = timeout
        self.streams = 0
        self.rng = random.Random()
        self.session: aiohttp.ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        # No total timeout (streams are long); connect and per-read limits keep every call bounded.
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=self.timeout)
        # A new upstream connection per request: reusing a kept-alive one races the upstream closing it
        # ("Server disconnected"), which this gateway would answer with a 500 of its own.
        connector = aiohttp.TCPConnector(force_close=True)
        self.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=True, connector=connector)

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    def _burn(self) -> None:
        """The per-event work (metering, logging, moderation) done synchronously on the event loop."""
        until = time.perf_counter() + self.cpu_per_event * self.streams
        while time.perf_counter() < until:
            pass

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        await asyncio.sleep(self.rng.uniform(0, self.max_delay))
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with self.session.request(
            request.method, self.upstream + request.rel_url.raw_path_qs, headers=headers, data=body
        ) as upstream:
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in RELAYED_AWAY}
            if upstream.headers.get("content-type", "").startswith("text/event-stream"):
                return await self._relay_events(request, upstream, out_headers)
            payload = await upstream.read()
            return web.Response(status=upstream.status, body=payload, headers=out_headers)

    async def _relay_events(
        self, request: web.Request, upstream: aiohttp.ClientResponse, headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        self.streams += 1
        try:
            buffer = b""
            data: list[str] = []
            async for chunk in upstream.content.iter_any():
                buffer += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", errors="replace")
                    if text.startswith("data:"):
                        data.append(text[5:].removeprefix(" "))
                    elif not text and data:
                        self._burn()
                        await response.write(("data: " + "\n".join(data) + "\n\n").encode())
                        data = []
        except (ConnectionResetError, aiohttp.ClientError):
            pass  # the client or the upstream went away; closing the upstream below ends the other side
        finally:
            self.streams -= 1
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.support.slow_proxy", description=__doc__)
    parser.add_argument("--upstream", required=True, help="base URL of the server behind the gateway")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free one)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--max-delay", type=float, default=0.5, help="seconds before forwarding, at most")
    parser.add_argument(
        "--cpu-per-event", type=float, default=0.002, help="busy seconds per relayed event and open stream"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds an upstream read may take")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    gateway = _Gateway(args.upstream, args.max_delay, args.cpu_per_event, args.timeout)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(gateway.start)
    app.on_cleanup.append(gateway.stop)
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = runner.addresses[0][1]
    if args.port_file is not None:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(port), encoding="utf-8")
        os.replace(tmp, args.port_file)  # atomic: a reader never sees a half-written port
    print(f"slow proxy on http://127.0.0.1:{port} -> {args.upstream}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parser().parse_args(argv)))
    return 0


class SlowProxy(ServerSupervisor):
    """``python -m tests.support.slow_proxy`` in front of ``upstream`` for the length of a ``with``."""

    def __init__(self, upstream: str, *args: str, startup_timeout: float = 30) -> None:
        def command(port_file: Path) -> list[str]:
            module = [sys.executable, "-m", "tests.support.slow_proxy", "--upstream", upstream]
            return [*module, "--port", "0", "--port-file", str(port_file), *args]

        super().__init__(
            command,
            name="the slow proxy",
            cwd=Path(__file__).resolve().parents[2],
            startup_timeout=startup_timeout,
            workdir_prefix="conform42-slow-proxy-",
        )


if __name__ == "__main__":
    sys.exit(main())
