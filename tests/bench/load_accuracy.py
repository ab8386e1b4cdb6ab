"""Accuracy and capacity of the load harness, measured against a server that records the truth.

The truth is a tiny asyncio SSE server (``serve`` below) that emits OpenAI ``chat.completion.chunk``
events on a fixed schedule (a role chunk and the first content chunk at TTFT, one content chunk per
ITL, a content-less finish chunk, usage, [DONE]) and writes when each request arrived (the kernel's
receive stamp) and when it actually sent each content chunk. It runs pinned to core 0, every client to
core 1 (``taskset``).

(a) Accuracy at 1, 10 and 100 concurrent streams, for the harness (``python -m loadtests
    --record-file``) and for vLLM's own serving benchmark (``vllm.benchmarks.serve``, --save-detailed):
    per-request TTFT error = measured TTFT - (first content sent - request received); per-token ITL
    error = measured gap - sent gap.
(b) Capacity of one Locust process on one core, harness vs plain FastHttpUser on the same endpoint:
    simple (non-streamed) requests, and 32-token streams parsed with TTFT/ITL recorded; several
    rounds in ABBA order, the median of the per-round ratios is the figure.

    .venv/bin/python tests/bench/load_accuracy.py [--seconds 10] [--levels 1,10,100] [--no-vllm]
                                                  [--capacity-rounds 4]

No assertion: the figures go into the README. The machine may be shared: say so next to them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TOKENS = 32

# ----------------------------------------------------------------------------------- truth server


def serve(port_file: Path, log_path: Path, ttft: float, itl: float) -> None:
    """The truth: answers on schedule and logs when each request arrived and each content chunk left.

    Raw non-blocking sockets on an asyncio loop rather than asyncio's transports, for one reason: the
    arrival of a request is the kernel's receive stamp (``loadtests.rxstamp``, ``SO_TIMESTAMPNS``), not
    the moment this loop got round to it. At 100 streams the loop spends its time in send callbacks,
    and a late arrival stamp would shorten the true TTFT and be counted as the client's error.
    """
    sys.path.insert(0, str(ROOT))
    from loadtests import rxstamp

    serial = 0
    log = log_path.open("w", encoding="utf-8")
    perf = time.perf_counter
    loop = asyncio.new_event_loop()

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    def event(obj: dict[str, Any]) -> bytes:
        return chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")

    class Conn:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock
            self.buf = b""
            self.out = b""  # what the socket did not take yet (rare: a client that stopped reading)
            self.closed = False
            self.stamped = rxstamp.enable(sock)
            loop.add_reader(sock, self.readable)

        def close(self) -> None:
            if not self.closed:
                self.closed = True
                loop.remove_reader(self.sock)
                loop.remove_writer(self.sock)
                self.sock.close()

        def write(self, data: bytes) -> None:
            if self.closed:
                return
            if self.out:
                self.out += data
                return
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return
            if sent < len(data):
                self.out = data[sent:]
                loop.add_writer(self.sock, self.writable)

        def writable(self) -> None:
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError:
                self.close()
                return
            self.out = self.out[sent:]
            if not self.out:
                loop.remove_writer(self.sock)

        def readable(self) -> None:
            try:
                if self.stamped:
                    data, now = rxstamp.recv(self.sock, 65536)
                else:
                    data, now = self.sock.recv(65536), perf()
            except BlockingIOError:
                return
            except OSError:
                data, now = b"", perf()
            if not data:
                self.close()
                return
            self.buf += data
            while True:
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    return
                head = self.buf[:i].decode("latin-1")
                m = re.search(r"content-length:\s*(\d+)", head, re.I)
                n = int(m.group(1)) if m else 0
                if len(self.buf) < i + 4 + n:
                    return
                body = self.buf[i + 4 : i + 4 + n]
                self.buf = self.buf[i + 4 + n :]
                self.handle(body, now)

        def handle(self, body: bytes, recv: float) -> None:
            nonlocal serial
            serial += 1
            sid = serial
            base = {"id": f"chatcmpl-{sid}", "object": "chat.completion.chunk", "created": 0, "model": "m"}
            if b'"stream": true' not in body and b'"stream":true' not in body:
                out = json.dumps(
                    {
                        "id": f"chatcmpl-{sid}",
                        "object": "chat.completion",
                        "model": "m",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "hi"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
                self.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(out), out)
                )
                return
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            role = event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
            contents = [
                event({**base, "choices": [{"index": 0, "delta": {"content": f"r{sid}t{k} "}}]})
                for k in range(TOKENS)
            ]
            tail = (
                event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                + event(
                    {
                        **base,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": 1,
                            "completion_tokens": TOKENS,
                            "total_tokens": TOKENS + 1,
                        },
                    }
                )
                + chunk(b"data: [DONE]\n\n")
                + b"0\r\n\r\n"
            )
            if ttft == 0 and itl == 0:  # capacity mode: the whole stream at once
                self.write(head + role + b"".join(contents) + tail)
                return
            self.write(head)
            sends: list[float] = []
            # The schedule counts from the request's arrival, so the loop's own lateness is not added.
            t0 = loop.time() - (perf() - recv)

            def send(k: int) -> None:
                if self.closed:
                    return
                if k == 0:
                    self.write(role)
                self.write(contents[k])
                sends.append(perf())
                if k + 1 < TOKENS:
                    loop.call_at(t0 + ttft + (k + 1) * itl, send, k + 1)
                else:
                    loop.call_at(t0 + ttft + TOKENS * itl, finish)

            def finish() -> None:
                self.write(tail)
                log.write(json.dumps({"serial": sid, "recv": recv, "sends": sends}) + "\n")

            loop.call_at(t0 + ttft, send, 0)

    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    listener.setblocking(False)

    def accept() -> None:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Conn(sock)

    loop.add_reader(listener, accept)
    port_file.write_text(str(listener.getsockname()[1]))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    log.close()


# ----------------------------------------------------------------------------------------- runs


class Truth:
    started = 0

    def __init__(self, tmp: Path, ttft: float, itl: float) -> None:
        Truth.started += 1
        n = Truth.started
        self.port_file, self.log = tmp / f"port-{n}", tmp / f"truth-{n}.jsonl"
        self.proc = subprocess.Popen(
            [
                "taskset",
                "-c",
                "0",
                PY,
                __file__,
                "serve",
                str(self.port_file),
                str(self.log),
                str(ttft),
                str(itl),
            ],
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not self.port_file.exists() or not self.port_file.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("truth server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}"

    def records(self) -> dict[int, dict[str, Any]]:
        self.stop()  # the server writes its log on the way out
        out = {}
        for line in self.log.read_text().splitlines():
            r = json.loads(line)
            out[r["serial"]] = r
        return out

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def run(cmd: list[str], timeout: float) -> str:
    proc = subprocess.run(
        ["taskset", "-c", "1", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc.stdout + proc.stderr


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def harness_cmd(url: str, users: int, kind: str, seconds: int, *extra: str) -> list[str]:
    """The harness with ``users`` internal-tier users doing only ``kind``, key as bearer (no tokens)."""
    weights = [
        f"--weight-{k}={1 if k == kind else 0}" for k in ("chat", "stream", "embed", "batch", "pipeline")
    ]
    return [
        PY,
        "-m",
        "loadtests",
        "--host",
        url,
        "--api-profile",
        "fortytwo",
        "--free-users",
        "0",
        "--pro-users",
        "0",
        "--internal-users",
        str(users),
        *weights,
        "-t",
        f"{seconds}s",
        "--only-summary",
        "--loglevel",
        "WARNING",
        *extra,
    ]


def harness_accuracy(truth: Truth, tmp: Path, users: int, seconds: int) -> tuple[list[float], list[float]]:
    rec = tmp / f"harness-{users}.jsonl"
    rec.unlink(missing_ok=True)
    run(harness_cmd(truth.url, users, "stream", seconds, "--record-file", str(rec)), seconds + 60)
    server = truth.records()
    ttft_err, itl_err = [], []
    for line in rec.read_text().splitlines():
        r = json.loads(line)
        s = server.get(int(r["id"].split("-")[1]))
        # The first request of each stream slot is warm-up (all start at once): left out, for both clients.
        if not s or s["serial"] <= users or len(s["sends"]) != len(r["content"]):
            continue
        c, sends = r["content"], s["sends"]
        ttft_err.append(((c[0] - r["start"]) - (sends[0] - s["recv"])) * 1000)
        itl_err += [((c[k + 1] - c[k]) - (sends[k + 1] - sends[k])) * 1000 for k in range(len(c) - 1)]
    return ttft_err, itl_err


def vllm_accuracy(truth: Truth, tmp: Path, users: int, seconds: int) -> tuple[list[float], list[float], int]:
    tokenizer = ROOT / ".cache" / "models" / "smollm2-135m-instruct"
    result = tmp / f"vllm-{users}.json"
    prompts = max(users * 3, int(users * seconds / (0.05 + TOKENS * 0.01)))
    code = (
        "import sys, argparse\nfrom vllm.benchmarks.serve import add_cli_args, main\n"
        "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
        "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))\n"
    )
    run(
        [
            PY,
            "-c",
            code,
            "--backend",
            "openai-chat",
            "--base-url",
            truth.url,
            "--endpoint",
            "/v1/chat/completions",
            "--model",
            "m",
            "--tokenizer",
            str(tokenizer),
            "--dataset-name",
            "random",
            "--random-input-len",
            "16",
            "--random-output-len",
            str(TOKENS),
            "--num-prompts",
            str(prompts),
            "--max-concurrency",
            str(users),
            "--request-rate",
            "inf",
            "--save-result",
            "--save-detailed",
            "--result-dir",
            str(tmp),
            "--result-filename",
            result.name,
            "--disable-tqdm",
        ],
        600,
    )
    data = json.loads(result.read_text())
    server = truth.records()
    ttft_err, itl_err, extra = [], [], 0
    for ttft, itls, text in zip(data["ttfts"], data["itls"], data["generated_texts"], strict=False):
        m = re.search(r"r(\d+)t0", text or "")
        s = server.get(int(m.group(1))) if m else None
        if not s or ttft is None or s["serial"] <= users:
            continue
        sends = s["sends"]
        ttft_err.append((ttft - (sends[0] - s["recv"])) * 1000)
        # itls[0] is role -> first content and the last is last content -> finish: both counted as tokens.
        extra = len(itls) + 1 - len(sends)
        inner = itls[1 : len(sends)]
        itl_err += [(g - (sends[k + 1] - sends[k])) * 1000 for k, g in enumerate(inner)]
    return ttft_err, itl_err, extra


BASELINE = """
import json
from locust import FastHttpUser, task, constant
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 32%s})
H = {"Authorization": "Bearer k", "Content-Type": "application/json"}
class Plain(FastHttpUser):
    wait_time = constant(0)
    @task
    def go(self):
        %s
"""
SIMPLE = 'self.client.post("/v1/chat/completions", data=BODY, headers=H)'
STREAM = """n = 0
        for line in self.client.iter_lines("/v1/chat/completions", method="POST", data=BODY, headers=H):
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    n += 1"""


def rps(prefix: Path, types: set[str]) -> float:
    with Path(f"{prefix}_stats.csv").open() as fh:
        return sum(
            float(r["Requests/s"])
            for r in csv.DictReader(fh)
            if r["Type"] in types and r["Name"] != "Aggregated"
        )


Rates = dict[str, list[tuple[float, float]]]


def capacity(truth: Truth, tmp: Path, seconds: int, users: int, rounds: int) -> Rates:
    """Per mode, ``rounds`` (plain, harness) rates in requests or streams per second.

    The two run in ABBA order (plain first in even rounds): this virtual machine's speed drifts by tens
    of per cent between runs of ten seconds, and the ratio within a round is what holds still.
    """
    out: Rates = {"simple": [], "stream": []}
    for mode, code, extra in (("simple", SIMPLE, ""), ("stream", STREAM, ', "stream": True')):
        f = tmp / f"plain_{mode}.py"
        f.write_text(BASELINE % (extra, code))
        for round_no in range(rounds):
            rates: dict[str, float] = {}
            for side in ("plain", "harness") if round_no % 2 == 0 else ("harness", "plain"):
                prefix = tmp / f"{side}-{mode}-{round_no}"
                if side == "plain":
                    cmd = [
                        PY,
                        "-m",
                        "locust",
                        "-f",
                        str(f),
                        "--headless",
                        "-u",
                        str(users),
                        "-r",
                        str(users),
                        "-t",
                        f"{seconds}s",
                        "--host",
                        truth.url,
                        "--csv",
                        str(prefix),
                        "--only-summary",
                        "--loglevel",
                        "WARNING",
                    ]
                else:
                    kind = "chat" if mode == "simple" else "stream"
                    cmd = harness_cmd(truth.url, users, kind, seconds, "--csv", str(prefix))
                run(cmd, seconds + 60)
                rates[side] = rps(prefix, {"POST"})
            out[mode].append((rates["plain"], rates["harness"]))
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--levels", default="1,10,100")
    ap.add_argument("--ttft", type=float, default=0.05)
    ap.add_argument("--itl", type=float, default=0.01)
    ap.add_argument("--capacity-users", type=int, default=50)
    ap.add_argument("--no-vllm", action="store_true")
    ap.add_argument("--capacity-rounds", type=int, default=4, help="plain / harness run pairs per mode")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="load-accuracy-"))
    print(
        f"schedule: TTFT {args.ttft * 1000:g} ms, ITL {args.itl * 1000:g} ms, {TOKENS} tokens; "
        f"server on core 0, clients on core 1; {args.seconds} s per run; shared machine (others may run)"
    )
    print("(a) accuracy: error = measured - sent (ms)")
    print(
        f"{'client':<8} {'streams':>7} {'n':>6} {'TTFT err p50':>13} {'TTFT err p99':>13} "
        f"{'ITL err p50':>12} {'ITL err p99':>12}  notes"
    )
    for level in (int(x) for x in args.levels.split(",")):
        truth = Truth(tmp, args.ttft, args.itl)
        try:
            t, i = harness_accuracy(truth, tmp, level, args.seconds)
            print(
                f"{'harness':<8} {level:>7} {len(t):>6} {pct(t, 0.5):>13.3f} {pct(t, 0.99):>13.3f} "
                f"{pct(i, 0.5):>12.3f} {pct(i, 0.99):>12.3f}"
            )
        finally:
            truth.stop()
        if args.no_vllm:
            continue
        truth = Truth(tmp, args.ttft, args.itl)
        try:
            t, i, extra = vllm_accuracy(truth, tmp, level, args.seconds)
            print(
                f"{'vllm':<8} {level:>7} {len(t):>6} {pct(t, 0.5):>13.3f} {pct(t, 0.99):>13.3f} "
                f"{pct(i, 0.5):>12.3f} {pct(i, 0.99):>12.3f}  counts {extra} content-less chunk(s) per "
                "stream as tokens"
            )
        except Exception as exc:  # report and go on: the harness figures still stand
            print(f"vllm     {level:>7}  failed: {exc}")
        finally:
            truth.stop()
    print(
        f"(b) capacity, one Locust process on core 1, {args.capacity_users} users (requests or streams per s)"
    )
    truth = Truth(tmp, 0.0, 0.0)
    try:
        cap = capacity(truth, tmp, args.seconds, args.capacity_users, args.capacity_rounds)
    finally:
        truth.stop()
    for mode in ("simple", "stream"):
        ratios = [harness / plain for plain, harness in cap[mode]]
        rounds = "  ".join(f"{plain:.0f}/{harness:.0f}" for plain, harness in cap[mode])
        print(
            f"{mode:<7} plain/harness per round: {rounds}   ratios "
            f"{', '.join(f'{r:.2f}' for r in ratios)}   median {statistics.median(ratios):.2f}"
        )
    print(f"raw files: {tmp}")


if __name__ == "__main__":
    main()
