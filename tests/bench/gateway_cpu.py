"""Gateway CPU per streamed event, without vLLM: a paced fake upstream -> the gateway -> a client.

The fake upstream speaks vLLM's streaming wire format (chunked SSE, one event per chunk, a pause
between events so every event is its own wake-up, as with real token-by-token generation). The
gateway runs the real VllmChatEngine over it, once as shipped (aiohttp) and once with the stream
reader swapped for the httpx one it used before, so the two figures come from one run. The number
printed is the gateway process's CPU time (user + system, from /proc) divided by the events it
passed on; on two cores that CPU is taken from vLLM, which is why it matters.

    .venv/bin/python tests/bench/gateway_cpu.py [--events 64] [--gap-ms 2] [--requests 32]

Needs the converted chat model's tokenizer (``make vllm``) but not vLLM itself. No assertion: figures
go into the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

EVENT = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"42-think",'
    b'"choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}]}\n\n'
)


def upstream(port_queue: Any, events: int, gap_s: float) -> None:
    """A keep-alive HTTP/1.1 server answering every POST with ``events`` SSE events, then [DONE]."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                for _ in range(events):
                    writer.write(b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
                    await writer.drain()
                    await asyncio.sleep(gap_s)
                done = b"data: [DONE]\n\n"
                writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


async def _httpx_stream(self: Any, body: dict[str, Any]) -> AsyncIterator[bytes]:
    """The previous stream reader (httpx ``aiter_raw``), kept here for the comparison only."""
    client = getattr(self, "_bench_httpx", None)
    if client is None:
        client = self._bench_httpx = httpx.AsyncClient(base_url=self.base_url, timeout=60, trust_env=False)
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        buffer = b""
        async for chunk in response.aiter_raw():
            buffer += chunk
            while (end := buffer.find(b"\n\n")) >= 0:
                yield buffer[: end + 2]
                buffer = buffer[end + 2 :]


def gateway(upstream_port: int, port_queue: Any, reader: str) -> None:
    import uvicorn

    from reference_server.app import create_app
    from reference_server.config import ServerConfig
    from reference_server.engines.sim import SimEmbedEngine
    from reference_server.engines.vllm import CHAT_SERVED_NAMES, VllmChatEngine
    from reference_server.model_prep import prepare_chat_model

    if reader == "httpx":
        VllmChatEngine.stream = _httpx_stream  # type: ignore[method-assign]
    model_dir = prepare_chat_model(ROOT / ".cache" / "models")
    chat = VllmChatEngine(f"http://127.0.0.1:{upstream_port}", CHAT_SERVED_NAMES, model_dir, 8192, None)
    app = create_app(ServerConfig(), chat, SimEmbedEngine())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    port_queue.put(port)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, concurrency: int, requests: int) -> int:
    from reference_server.auth import DEMO_KEYS

    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
        token = (
            await client.post(
                f"{base}/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS['internal']}"}
            )
        ).json()
        headers = {"Authorization": f"Bearer {token['task_token']}"}
        body = {"model": "42-logic", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        remaining = list(range(requests))
        passed = 0

        async def worker() -> None:
            nonlocal passed
            while remaining:
                remaining.pop()
                async with client.stream(
                    "POST", f"{base}/v1/chat/completions", json=body, headers=headers
                ) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        passed += line.startswith("data: ")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return passed


def measure(reader: str, args: argparse.Namespace, upstream_port: int) -> dict[int, float]:
    ports: Any = mp.Queue()
    proc = mp.Process(target=gateway, args=(upstream_port, ports, reader), daemon=True)
    proc.start()
    port = ports.get(timeout=120)
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or not proc.is_alive():
                raise SystemExit("the gateway did not start") from None
            time.sleep(0.2)
    asyncio.run(drive(port, 2, 4))  # warm-up: first requests pay for lazy set-up
    result = {}
    for level in (1, 16):
        before = cpu_seconds(proc.pid)  # type: ignore[arg-type]
        events = asyncio.run(drive(port, level, args.requests))
        result[level] = (cpu_seconds(proc.pid) - before) / events * 1e6  # type: ignore[arg-type]
    proc.terminate()
    proc.join(10)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=64, help="events per streamed answer")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="pause between events upstream")
    parser.add_argument("--requests", type=int, default=32, help="answers per concurrency level")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ports: Any = mp.Queue()
    fake = mp.Process(target=upstream, args=(ports, args.events, args.gap_ms / 1000), daemon=True)
    fake.start()
    upstream_port = ports.get(timeout=30)
    figures = {reader: measure(reader, args, upstream_port) for reader in ("aiohttp", "httpx")}
    fake.terminate()
    print(json.dumps({"unit": "gateway CPU µs per streamed event", **figures}, indent=2))
    for level in (1, 16):
        ratio = figures["httpx"][level] / figures["aiohttp"][level]
        print(
            f"concurrency {level:>2}: aiohttp {figures['aiohttp'][level]:6.1f} µs, "
            f"httpx {figures['httpx'][level]:6.1f} µs, httpx / aiohttp = {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
