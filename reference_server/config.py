"""Gateway configuration, filled from ``conform42 serve`` options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DEMO_KEYS_FILE", "ServerConfig"]

DEMO_KEYS_FILE = Path(__file__).resolve().parent / "keys" / "demo_keys.toml"


@dataclass
class ServerConfig:
    #: "42ai": API key -> task token exchange; "fortytwo": the API key is the bearer itself.
    flavour: Literal["42ai", "fortytwo"] = "42ai"
    keys_file: Path = DEMO_KEYS_FILE
    #: HS256 secret for task tokens; None generates one per start (tokens die with the process).
    jwt_secret: str | None = None
    token_ttl_s: int = 60
    #: Overrides the KV-cache budget read from the engine, so tests can trigger 503.
    kv_budget_tokens: int | None = None
    #: Folder whose files ``image_url`` may name (``file:`` URLs or bare paths); None allows data: URLs only.
    image_dir: Path | None = None
    #: Where batches (batches.sqlite3) live; None makes a temporary folder per run (lost at shutdown).
    data_dir: Path | None = None
    #: Completion cap of a batch task whose request sets no max_tokens (unbounded would fill the context).
    batch_max_tokens: int = 256
    #: Batch workers per key of the unlimited (internal) tier; free and pro get their tier concurrency.
    batch_unlimited_tier_workers: int = 8
    #: A batch task still unfinished after this long is failed (type "timeout").
    batch_task_timeout_s: float = 600.0
    #: Extra pipeline templates (*.yaml), on top of the ones shipped in reference_server/pipelines.
    pipeline_dir: Path | None = None
    retry_after_429_s: int = 5
    retry_after_503_s: int = 30
