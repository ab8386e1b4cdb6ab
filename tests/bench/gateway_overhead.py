"""Gateway overhead against calling vLLM directly, measured side by side in one run.

Starts one vLLM chat engine, then the reference server attached to that same engine
(``--chat-engine-url``), and sends identical streaming requests to both, alternating rounds so drift
in the machine affects both sides alike. Prints, per concurrency level, output-token throughput of
each side and their ratio, and the median time to first token and end-to-end latency of each, with
the difference the gateway adds. Targets (issue 3): throughput ratio >= 0.97, added p50 <= 2 ms.

Then a paired latency phase, because on a shared virtual machine the engine's own speed drifts by
10-20 % between rounds, more than the milliseconds to be measured: each worker alternates sides
request in ABBA order (half the workers start direct, half through the gateway), so both sides see the
same engine load at the same time. At one stream consecutive requests form pairs, and the median of
the per-pair differences is printed as well.

    .venv/bin/python tests/bench/gateway_overhead.py [--requests 16] [--max-tokens 64] [--levels 1,16]
                                                     [--pairs 40] [--engine-nice N]

No assertion here: the figures go into the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from reference_server.auth import DEMO_KEYS  # noqa: E402
from reference_server.engines.vllm import CHAT_SERVED_NAMES  # noqa: E402
from reference_server.model_prep import prepare_chat_model  # noqa: E402
from reference_server.vllm_process import DEFAULT_ENGINE_NICE, VllmProcess  # noqa: E402


@dataclass
class Sample:
    ttft: float
    e2e: float
    tokens: int


async def one_stream(
    client: httpx.AsyncClient, url: str, make_headers: Callable[[], dict[str, str]], body: dict[str, object]
) -> Sample:
    headers = make_headers()  # before the clock starts: a token refresh is not request latency
    start = time.perf_counter()
    ttft = 0.0
    tokens = 0
    async with client.stream("POST", url, json=body, headers=headers) as response:
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


async def run_level(
    base: str, headers: Callable[[], dict[str, str]], concurrency: int, requests: int, max_tokens: int
) -> tuple[float, list[Sample]]:
    body = {
        "model": "42-logic",
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        "max_tokens": max_tokens,
        "ignore_eos": True,  # vLLM extension: every request yields exactly max_tokens tokens
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300, connect=5), limits=limits) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)
        samples: list[Sample] = []

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                samples.append(await one_stream(client, f"{base}/v1/chat/completions", headers, body))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return sum(s.tokens for s in samples) / elapsed, samples


async def run_paired(
    sides: list[tuple[str, Callable[[], dict[str, str]]]], concurrency: int, per_worker: int, max_tokens: int
) -> tuple[list[Sample], list[Sample]]:
    """``concurrency`` workers, each sending ``per_worker`` requests alternating between the two sides.

    Returns the samples of each side in the order they were taken, so at concurrency 1 ``a[i]`` and
    ``b[i]`` are consecutive requests (a pair).
    """
    body = {
        "model": "42-logic",
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    out: tuple[list[Sample], list[Sample]] = ([], [])
    async with httpx.AsyncClient(timeout=httpx.Timeout(300, connect=5), limits=limits) as client:

        async def worker(first: int) -> None:
            for i in range(per_worker):
                # ABBA within a worker: in every other pair the gateway goes first, so the order inside a
                # pair (one request right after another) weighs on both sides alike.
                side = (first + i + i // 2) % 2
                base, make_headers = sides[side]
                out[side].append(await one_stream(client, f"{base}/v1/chat/completions", make_headers, body))

        await asyncio.gather(*(worker(k % 2) for k in range(concurrency)))
    return out


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
            "--log-level",
            "warning",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=16, help="requests per side, level and round (at least 4 x level)"
    )
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--levels", default="1,16")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per level")
    parser.add_argument("--engine-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the vLLM engine (both sides use the same engine)")
    parser.add_argument("--pairs", type=int, default=40,
                        help="paired phase: requests per side at each level (rounded up to the level)")
    parser.add_argument("--engine-nice", type=int, default=None, metavar="N",
                        help="niceness of the vLLM engine (default: what `conform42 serve` uses)")
    args = parser.parse_args()
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

            cached: list[tuple[float, dict[str, str]]] = []

            def gateway_headers() -> dict[str, str]:
                # Task tokens live 60 s (the API's rule): reuse one for 30 s, then exchange a new one.
                # Called before each request's clock starts, so the exchange is never timed.
                if cached and time.monotonic() - cached[0][0] < 30:
                    return cached[0][1]
                token = httpx.post(
                    f"{gateway_base}/api/token",
                    headers={"Authorization": f"Bearer {DEMO_KEYS['internal']}"},
                    timeout=10,
                )
                token.raise_for_status()
                cached[:] = [(time.monotonic(), {"Authorization": f"Bearer {token.json()['task_token']}"})]
                return cached[0][1]

            sides: dict[str, tuple[str, Callable[[], dict[str, str]]]] = {
                "direct": (vllm.base_url, dict),
                "gateway": (gateway_base, gateway_headers),
            }
            # Warm both paths (first requests pay for lazy initialisation on each side).
            for base, make_headers in sides.values():
                asyncio.run(run_level(base, make_headers, 2, 4, 8))
            print(f"{'conc':>4} {'side':>8} {'tok/s':>8} {'TTFT p50 ms':>12} {'E2E p50 ms':>11}")
            for level in (int(x) for x in args.levels.split(",")):
                results: dict[str, tuple[list[float], list[Sample]]] = {
                    "direct": ([], []),
                    "gateway": ([], []),
                }
                for round_no in range(args.rounds):
                    # ABBA order: a drift in the engine's speed during a round pair hits both sides alike.
                    order = list(sides.items()) if round_no % 2 == 0 else list(reversed(sides.items()))
                    for name, (base, make_headers) in order:
                        rate, samples = asyncio.run(
                            run_level(
                                base, make_headers, level, max(args.requests, 4 * level), args.max_tokens
                            )
                        )
                        results[name][0].append(rate)
                        results[name][1].extend(samples)
                summary = {}
                for name, (rates, samples) in results.items():
                    rate = statistics.fmean(rates)
                    ttft = statistics.median(s.ttft for s in samples) * 1000
                    e2e = statistics.median(s.e2e for s in samples) * 1000
                    summary[name] = (rate, ttft, e2e)
                    print(f"{level:>4} {name:>8} {rate:>8.1f} {ttft:>12.2f} {e2e:>11.2f}")
                ratio = summary["gateway"][0] / summary["direct"][0]
                added_ttft = summary["gateway"][1] - summary["direct"][1]
                added_e2e = summary["gateway"][2] - summary["direct"][2]
                rounds = [g / d for d, g in zip(results["direct"][0], results["gateway"][0], strict=True)]
                print(
                    f"{level:>4} {'ratio':>8} {ratio:>8.3f} {added_ttft:>+12.2f} {added_e2e:>+11.2f}"
                    f"   (gateway / direct; added ms); per round {', '.join(f'{r:.3f}' for r in rounds)},"
                    f" median {statistics.median(rounds):.3f}"
                )
            print("paired: workers alternate direct / gateway request by request (same engine load)")
            print(f"{'conc':>4} {'n':>4} {'TTFT p50 direct':>16} {'gateway':>8} {'added':>7} "
                  f"{'E2E p50 direct':>15} {'gateway':>8} {'added':>7}  median of pair differences")
            pair_sides = [sides["direct"], sides["gateway"]]
            for level in (int(x) for x in args.levels.split(",")):
                per_worker = 2 * max(1, -(-args.pairs // level))
                direct, through = asyncio.run(run_paired(pair_sides, level, per_worker, args.max_tokens))
                d_ttft = statistics.median(s.ttft for s in direct) * 1000
                g_ttft = statistics.median(s.ttft for s in through) * 1000
                d_e2e = statistics.median(s.e2e for s in direct) * 1000
                g_e2e = statistics.median(s.e2e for s in through) * 1000
                note = ""
                if level == 1:
                    pairs = list(zip(direct, through, strict=True))
                    ttft_diff = statistics.median((g.ttft - d.ttft) * 1000 for d, g in pairs)
                    e2e_diff = statistics.median((g.e2e - d.e2e) * 1000 for d, g in pairs)
                    note = f"TTFT {ttft_diff:+.2f} ms, E2E {e2e_diff:+.2f} ms"
                print(f"{level:>4} {len(direct):>4} {d_ttft:>16.2f} {g_ttft:>8.2f} {g_ttft - d_ttft:>+7.2f} "
                      f"{d_e2e:>15.2f} {g_e2e:>8.2f} {g_e2e - d_e2e:>+7.2f}  {note}")
        finally:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(30)


if __name__ == "__main__":
    main()
