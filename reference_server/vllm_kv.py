"""The KV-cache capacity of a running vLLM server, in tokens: what the gateway's 503 admission budgets.

Read from its Prometheus ``/metrics`` page (any vLLM server, also one the gateway did not start) or,
failing that, from the start-up log of a server it did start.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import httpx

__all__ = ["kv_cache_tokens_from_log", "kv_cache_tokens_from_metrics", "read_kv_cache_tokens"]

_INFO_LINE = re.compile(r"^vllm:cache_config_info\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_LOG_TOKENS = re.compile(r"KV cache size: ([\d,]+) tokens")


def kv_cache_tokens_from_metrics(metrics_text: str) -> int | None:
    """KV-cache capacity in tokens from a vLLM Prometheus `/metrics` page, or None.

    vLLM exports its CacheConfig as the labels of the `vllm:cache_config_info` gauge. Prefer the
    `kv_cache_size_tokens` label (the engine's own resolved figure, the one its log prints); fall back
    to `num_gpu_blocks * block_size` (on CPU, "gpu blocks" are the CPU KV-cache blocks).
    """
    match = _INFO_LINE.search(metrics_text)
    if match is None:
        return None
    labels = dict(_LABEL.findall(match.group("labels")))
    direct = labels.get("kv_cache_size_tokens", "")
    if direct.isdigit() and int(direct) > 0:
        return int(direct)
    blocks, block_size = labels.get("num_gpu_blocks", ""), labels.get("block_size", "")
    if blocks.isdigit() and block_size.isdigit():
        return int(blocks) * int(block_size)
    return None


def kv_cache_tokens_from_log(log_text: str) -> int | None:
    """KV-cache capacity in tokens from the engine's start-up log line "... KV cache size: N tokens"."""
    matches = _LOG_TOKENS.findall(log_text)
    return int(matches[-1].replace(",", "")) if matches else None


def read_kv_cache_tokens(
    base_url: str, log_file: Path | None = None, *, timeout_s: float = 5.0
) -> int | None:
    """KV-cache capacity in tokens of a running vLLM server, or None if it does not tell.

    Reads `GET /metrics` first (works for any vLLM server, also one we did not start), then the log
    file if given.
    """
    with contextlib.suppress(httpx.HTTPError):
        response = httpx.get(f"{base_url.rstrip('/')}/metrics", timeout=timeout_s, trust_env=False)
        if response.status_code == 200:
            found = kv_cache_tokens_from_metrics(response.text)
            if found is not None:
                return found
    if log_file is not None:
        with contextlib.suppress(OSError):
            return kv_cache_tokens_from_log(log_file.read_text(encoding="utf-8", errors="replace"))
    return None
