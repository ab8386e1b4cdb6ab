"""What the suite runs against: URLs, profile, per-tier API keys, model IDs and the request timeout.

A tier whose key is not given is *Disabled* (not failed): ``Target.key`` says so through
``suite.checks.disabled``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from suite.samples import PNG_DATA_URL

__all__ = [
    "DOCUMENTED_MODELS",
    "PROFILE_NAMES",
    "TIERS",
    "TOKEN_PATH",
    "Profile",
    "Target",
    "Tier",
    "token_base_url",
]

Tier = Literal["free", "pro", "internal"]
Profile = Literal["42ai", "fortytwo"]
TIERS: tuple[Tier, ...] = ("free", "pro", "internal")
PROFILE_NAMES: tuple[Profile, ...] = ("42ai", "fortytwo")

#: The 42 AI lab's model table (000): model ID -> the tiers that may use it.
DOCUMENTED_MODELS: Mapping[str, tuple[Tier, ...]] = {
    "42-logic": ("free", "pro", "internal"),
    "42-general": ("free", "pro", "internal"),
    "42-embed": ("free", "pro", "internal"),
    "42-think": ("pro", "internal"),
    "42-vision": ("pro", "internal"),
    "42-coder": ("pro", "internal"),
}


#: Where the documents put the exchange on the token host (000: ``https://the-42-lab.com/api/token``).
TOKEN_PATH = "/api/token"


def token_base_url(url: str) -> str:
    """The token host's base URL from ``--token-url``, which may name the base or the full endpoint.

    000 writes the endpoint (``.../api/token``), so users paste that; the client appends the path itself,
    and without this a pasted endpoint became ``.../api/token/api/token`` (every exchange a 404).
    """
    base = url.rstrip("/")
    if base.endswith(TOKEN_PATH):
        base = base[: -len(TOKEN_PATH)].rstrip("/")
    return base


@dataclass(frozen=True)
class Target:
    """A server under test. ``token_url`` is the base URL of the host where POST /api/token lives (42ai
    profile only); the full endpoint is accepted too and normalised to the base."""

    base_url: str
    profile: Profile = "42ai"
    token_url: str | None = None
    # repr=False: a traceback that prints the Target must not print the keys.
    keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 30.0
    chat_model: str = "42-general"
    embed_model: str | None = "42-embed"
    #: Seconds a task token lives, as documented (000: "expires after 60 seconds").
    token_ttl_s: float = 60.0
    #: The image the vision and pipeline tests send (``--image-url``): a data: URL unless the target
    #: fetches images (000's own example is an https URL).
    image_url: str = PNG_DATA_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.token_url is not None:
            object.__setattr__(self, "token_url", token_base_url(self.token_url))

    @property
    def token_base(self) -> str:
        """Base URL of the token exchange (the documents put it on another host)."""
        return self.token_url or self.base_url

    def has_key(self, tier: str) -> bool:
        return bool(self.keys.get(tier))

    def key(self, tier: str) -> str:
        """The tier's API key; a missing key disables the calling test instead of failing it."""
        value = self.keys.get(tier)
        if not value:
            from suite.checks import disabled  # local: checks imports target for type hints only

            disabled(f"no API key for the {tier} tier (--key-{tier} or CONFORM42_KEY_{tier.upper()})")
        return value

    def secrets(self) -> list[str]:
        """Every value that must never appear in a report."""
        return [k for k in self.keys.values() if k]
