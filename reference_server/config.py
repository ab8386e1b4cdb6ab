"""Gateway configuration, filled from ``conform42 serve`` options."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    #: Where batches and other state live.
    data_dir: Path = field(default_factory=lambda: Path(".cache") / "server-data")
    retry_after_429_s: int = 5
    retry_after_503_s: int = 30
