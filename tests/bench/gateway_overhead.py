"""Gateway overhead against calling vLLM directly, measured side by side in one run.

Starts one vLLM chat engine, then the reference server attached to that same engine
(``--chat-engine-url``, default log level, so the access log is written as in production), and
compares the two ways in. Targets: throughput ratio >= 0.97, added p50 <= 2 ms.

**Throughput** (per concurrency level): closed-loop rounds of identical streaming requests, one side
at a time, in ABBA order (direct, gateway, gateway, direct, ...), so a linear drift of the engine's
speed during a pair of rounds hits both sides alike; this shared virtual machine drifts by 10-25 %
over minutes. Printed: tokens/s of each side, the pooled ratio, the ratio of every adjacent pair of
rounds and their geometric mean (the figure to read).

**Added latency** (time to first token, TTFT):

* at 1 stream, consecutive requests alternate sides (ABBA); the engine is idle when each arrives, so
  a pair's difference is the gateway's own delay;
* at N > 1 streams, vLLM admits new requests only between engine steps (40-60 ms each at 16 streams),
  so a request's TTFT depends on where in a step it arrives. Closed-loop clients are phase-locked to
  the steps (each sends right after its previous answer ended, at a step boundary), and the earlier
  closed-loop comparison moved by whole steps from run to run (+14 to +49 ms). Here N - 2 background
  streams run through the gateway (a separate process, so their parsing does not delay the probes),
  and probe pairs (one request direct, one through the gateway, sent together, order alternating) start
  after a random pause, so their phase within a step is uniform. A delay d before the engine then
  costs d on average (the chance of missing a step is d / step), so the distribution of gateway TTFTs
  is the direct one shifted by what the gateway adds: the difference of the two medians estimates it.

Every latency figure comes with a 95 % bootstrap interval over the pairs (seeded, reproducible).

    .venv/bin/python tests/bench/gateway_overhead.py [--levels 1,16] [--rounds 6] [--pairs 300]
                                                     [--max-tokens 64] [--engine-nice N]

No assertion here: the figures go into the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from reference_server.auth import DEMO_KEYS  # noqa: E402
from reference_server.engines.vllm import CHAT_SERVED_NAMES  # noqa: E402
from reference_server.model_prep import prepare_chat_model  # noqa: E402
from reference_server.vllm_process import DEFAULT_ENGINE_NICE, VllmProcess  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper."
#: Tokens of a latency probe: only its first token is measured, and a short probe keeps the engine's
#: load at the level the background sets (and is idle again at once at 1 stream).
PROBE_TOKENS = 2
#: Pause before each probe pair: uniform in [0, this) seconds, several engine steps wide.
PROBE_PAUSE_S = 0.25


@dataclass
class Sample:
    ttft: float
    e2e: float
    tokens: int


Headers = Callable[[], dict[str, str]]
Side = tuple[str, Headers]


class TaskTokens:
    """Task tokens of the internal demo key (no concurrency cap), reused for 30 s of their 60 s.

    Called before a request's clock starts, so an exchange is never timed.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self._at = -math.inf
        self._headers: dict[str, str] = {}

    def __call__(self, max_age_s: float = 30) -> dict[str, str]:
        if time.monotonic() - self._at >= max_age_s:
            response = httpx.post(
                f"{self.base}/api/token",
                headers={"Authorization": f"Bearer {DEMO_KEYS['internal']}"},
                timeout=10,
            )
            response.raise_for_status()
            self._headers = {"Authorization": f"Bearer {response.json()['task_token']}"}
            self._at = time.monotonic()
        return self._headers


def stream_body(max_tokens: int) -> dict[str, object]:
    return {
        "model": "42-logic",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "ignore_eos": True,  # vLLM extension: every request yields exactly max_tokens tokens
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def http_client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    return httpx.AsyncClient(timeout=httpx.Timeout(300, connect=5), limits=limits)


async def one_stream(client: httpx.AsyncClient, side: Side, body: dict[str, object]) -> Sample:
    base, make_headers = side
    headers = make_headers()  # before the clock starts: a token refresh is not request latency
    start = time.perf_counter()
    ttft = 0.0
    tokens = 0
    async with client.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and not ttft:
                ttft = time.perf_counter() - start
    return Sample(ttft, time.perf_counter() - start, tokens)


async def closed_loop(
    side: Side, concurrency: int, requests: int, max_tokens: int
) -> tuple[float, list[Sample]]:
    """``requests`` streams over ``concurrency`` workers; output tokens per second and the samples."""
    body = stream_body(max_tokens)
    async with http_client(concurrency) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)
        samples: list[Sample] = []

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                samples.append(await one_stream(client, side, body))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return sum(s.tokens for s in samples) / elapsed, samples


async def sequential_pairs(sides: Sequence[Side], pairs: int) -> list[tuple[Sample, Sample]]:
    """One short request at a time, alternating sides in ABBA order; (direct, gateway) per pair."""
    body = stream_body(PROBE_TOKENS)
    out: list[tuple[Sample, Sample]] = []
    async with http_client(1) as client:
        for i in range(pairs):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            got = {k: await one_stream(client, sides[k], body) for k in order}
            out.append((got[0], got[1]))
    return out


async def probe_pairs(sides: Sequence[Side], pairs: int, seed: int) -> list[tuple[Sample, Sample]]:
    """Pairs sent together after a random pause (see the module docstring); (direct, gateway) per pair."""
    body = stream_body(PROBE_TOKENS)
    rng = random.Random(seed)
    out: list[tuple[Sample, Sample]] = []
    async with http_client(2) as client:
        for i in range(pairs):
            for _, make_headers in sides:
                # Any token exchange happens here, with a margin, never while the other probe's clock runs.
                if isinstance(make_headers, TaskTokens):
                    make_headers(max_age_s=20)
            await asyncio.sleep(rng.uniform(0, PROBE_PAUSE_S))
            order = (0, 1) if i % 2 == 0 else (1, 0)
            got = await asyncio.gather(*(one_stream(client, sides[k], body) for k in order))
            by_side = dict(zip(order, got, strict=True))
            out.append((by_side[0], by_side[1]))
    return out


def _background(base: str, streams: int, max_tokens: int, stop: Any, started: Any) -> None:
    """Child process: ``streams`` closed-loop streams through the gateway until ``stop`` is set."""
    side: Side = (base, TaskTokens(base))
    body = stream_body(max_tokens)

    async def run() -> None:
        async with http_client(streams) as client:

            async def worker() -> None:
                while not stop.is_set():
                    await one_stream(client, side, body)

            tasks = [asyncio.create_task(worker()) for _ in range(streams)]
            started.set()
            await asyncio.gather(*tasks)

    asyncio.run(run())


def bootstrap_ci(
    pairs: Sequence[tuple[float, float]],
    stat: Callable[[Sequence[tuple[float, float]]], float],
    seed: int = 0,
) -> tuple[float, float]:
    """95 % percentile interval of ``stat`` over 2,000 resamples of the pairs."""
    rng = random.Random(seed)
    values = sorted(stat(rng.choices(pairs, k=len(pairs))) for _ in range(2000))
    return values[50], values[1949]


def median_shift(pairs: Sequence[tuple[float, float]]) -> float:
    return statistics.median(g for _, g in pairs) - statistics.median(d for d, _ in pairs)


def median_of_differences(pairs: Sequence[tuple[float, float]]) -> float:
    return statistics.median(g - d for d, g in pairs)


def mean_of_differences(pairs: Sequence[tuple[float, float]]) -> float:
    return statistics.fmean(g - d for d, g in pairs)


def report_latency(level: int, samples: list[tuple[Sample, Sample]]) -> None:
    ms = [(d.ttft * 1000, g.ttft * 1000) for d, g in samples]
    cells = []
    for name, stat in (
        ("p50 shift", median_shift),
        ("median of pair diffs", median_of_differences),
        ("mean of pair diffs", mean_of_differences),
    ):
        lo, hi = bootstrap_ci(ms, stat)
        cells.append(f"{name} {stat(ms):+.2f} [{lo:+.2f}, {hi:+.2f}]")
    d50 = statistics.median(d for d, _ in ms)
    g50 = statistics.median(g for _, g in ms)
    print(f"{level:>4} {len(ms):>5} {d50:>10.2f} {g50:>10.2f}  " + "; ".join(cells))


def start_gateway(chat_url: str, cache: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    log_path = cache / "logs" / "bench-gateway.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reference_server",
            "--engine",
            "vllm",
            "--chat-engine-url",
            chat_url,
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--cache-dir",
            str(cache),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited with {proc.returncode}; see {log_path}")
        if port_file.exists() and port_file.read_text().strip():
            base = f"http://127.0.0.1:{port_file.read_text().strip()}"
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    return proc, base
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise SystemExit("gateway did not become healthy in 120 s")


def throughput(sides: dict[str, Side], levels: list[int], args: argparse.Namespace) -> None:
    print("throughput: closed-loop rounds, one side at a time, ABBA order")
    print(f"{'conc':>4} {'side':>8} {'tok/s':>8} {'TTFT p50 ms':>12} {'E2E p50 ms':>11}")
    for level in levels:
        rates: dict[str, list[float]] = {"direct": [], "gateway": []}
        samples: dict[str, list[Sample]] = {"direct": [], "gateway": []}
        for round_no in range(args.rounds):
            # A pair of rounds is (direct, gateway) then (gateway, direct): ABBA over two pairs.
            order = ("direct", "gateway") if round_no % 2 == 0 else ("gateway", "direct")
            for name in order:
                rate, got = asyncio.run(
                    closed_loop(sides[name], level, max(args.requests, 4 * level), args.max_tokens)
                )
                rates[name].append(rate)
                samples[name].extend(got)
        pooled = {}
        for name in ("direct", "gateway"):
            pooled[name] = statistics.fmean(rates[name])
            ttft = statistics.median(s.ttft for s in samples[name]) * 1000
            e2e = statistics.median(s.e2e for s in samples[name]) * 1000
            print(f"{level:>4} {name:>8} {pooled[name]:>8.1f} {ttft:>12.2f} {e2e:>11.2f}")
        per_round = [g / d for d, g in zip(rates["direct"], rates["gateway"], strict=True)]
        geo = math.exp(statistics.fmean(math.log(r) for r in per_round))
        print(
            f"{level:>4} {'ratio':>8} {pooled['gateway'] / pooled['direct']:>8.3f}   gateway / direct;"
            f" per round pair {', '.join(f'{r:.3f}' for r in per_round)}; geometric mean {geo:.3f}"
        )


def latency(sides: dict[str, Side], gateway_base: str, levels: list[int], args: argparse.Namespace) -> None:
    print("added TTFT, ms (gateway - direct), 95 % bootstrap intervals over pairs")
    print(f"{'conc':>4} {'pairs':>5} {'direct p50':>10} {'gw p50':>10}  estimates")
    pair_sides = [sides["direct"], sides["gateway"]]
    for level in levels:
        if level == 1:
            report_latency(1, asyncio.run(sequential_pairs(pair_sides, args.pairs)))
            continue
        ctx = multiprocessing.get_context("spawn")
        stop, started = ctx.Event(), ctx.Event()
        background = ctx.Process(
            target=_background, args=(gateway_base, max(0, level - 2), args.max_tokens, stop, started)
        )
        background.start()
        try:
            if not started.wait(60):
                raise SystemExit("the background load did not start")
            time.sleep(5)  # let the background streams reach their steady state
            samples = asyncio.run(probe_pairs(pair_sides, args.pairs, seed=level))
            if not background.is_alive():
                # Probes against an engine without its background load would be reported as level N.
                raise SystemExit(f"the background load died (exit code {background.exitcode}); no figure")
            report_latency(level, samples)
        finally:
            stop.set()
            background.join(120)
            if background.is_alive():
                background.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=8, help="throughput: requests per side and round (at least 4 x level)"
    )
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--levels", default="1,16")
    parser.add_argument("--rounds", type=int, default=6, help="throughput rounds per side and level")
    parser.add_argument("--pairs", type=int, default=300, help="latency: pairs per level")
    parser.add_argument(
        "--engine-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the vLLM engine (both sides use the same engine)",
    )
    parser.add_argument(
        "--engine-nice",
        type=int,
        default=None,
        metavar="N",
        help="niceness of the vLLM engine (default: what `conform42 serve` uses)",
    )
    parser.add_argument("--skip", choices=("throughput", "latency"), help="leave one part out")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    engine_env = dict(item.split("=", 1) for item in args.engine_env)
    cache = ROOT / ".cache"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = prepare_chat_model(cache / "models")
    with VllmProcess(
        model_dir,
        CHAT_SERVED_NAMES,
        runner="generate",
        cache_root=cache / "vllm-bench",
        log_file=cache / "logs" / "bench-vllm-chat.log",
        # An interrupted benchmark must not leave a 3.6 GB engine behind.
        die_with_parent=True,
        env=engine_env,
        nice=DEFAULT_ENGINE_NICE if args.engine_nice is None else args.engine_nice,
    ) as vllm:
        print(f"vLLM engine: niceness {vllm.nice}, extra environment {engine_env or 'none'}")
        vllm.wait_ready(300)
        gateway, gateway_base = start_gateway(vllm.base_url, cache)
        try:
            sides: dict[str, Side] = {
                "direct": (vllm.base_url, dict),
                "gateway": (gateway_base, TaskTokens(gateway_base)),
            }
            # Warm both paths (first requests pay for lazy initialisation on each side).
            for side in sides.values():
                asyncio.run(closed_loop(side, 2, 4, 8))
            if args.skip != "throughput":
                throughput(sides, levels, args)
            if args.skip != "latency":
                latency(sides, gateway_base, levels, args)
        finally:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(30)


if __name__ == "__main__":
    main()
