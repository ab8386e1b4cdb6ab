"""The schemathesis schema of a target's profile: servers pointed at the target, auth and bounds applied.

The schema is built at test time from the ``Target`` (its profile picks ``specs/<profile>.openapi.yaml``),
because the target only exists once the plugin has resolved the options or started the bundled
reference server.

* **Servers.** The 42ai spec puts ``POST /api/token`` on another host than ``/v1``; both are rewritten so
  every operation hits the target: ``/v1/*`` the base URL, ``/api/token`` ``Target.token_base``.
* **Auth.** A schemathesis auth provider asks the suite's ``Api`` for a task token of the strongest tier
  with a key (internal, pro, free: the model rules of a weaker tier would only add documented 403s), so
  tokens are exchanged once and refreshed before their 60 s expiry; ``/api/token`` gets the raw API key.
  On the fortytwo profile the key is the bearer.
* **Secrets.** schemathesis's output sanitisation replaces the Authorization header in its curl line;
  the judge (``suite.properties.judge``) also removes API keys and task tokens from the failure text
  (``suite.curl.scrub``).
"""

from __future__ import annotations

import copy
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from suite.checks import disabled
from suite.http import TOKEN_PATH, Api
from suite.openapi import load_spec
from suite.properties.budget import Budget
from suite.properties.data import Case, register_hooks
from suite.target import Target

__all__ = ["OPERATIONS", "auth_tier", "build_schema", "call_kwargs", "prepared_spec"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _operations(profile: str) -> tuple[str, ...]:
    spec = load_spec(profile)
    return tuple(
        f"{method.upper()} {path}"
        for path, item in spec.get("paths", {}).items()
        for method in item
        if method in _METHODS
    )


#: Every operation of the 42ai spec (the fortytwo spec declares a subset): the tests are parametrised by
#: these labels at collection time, when the profile is not known yet.
OPERATIONS: tuple[str, ...] = _operations("42ai")

_TIER_PREFERENCE = ("internal", "pro", "free")


def prepared_spec(target: Target) -> dict[str, Any]:
    """The profile's spec with every server pointed at the target (per-path servers included)."""
    spec = copy.deepcopy(load_spec(target.profile))
    spec["servers"] = [{"url": target.base_url}]
    for path, item in spec.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        if "servers" in item:
            # Only the token exchange lives elsewhere in the documents (000: the-42-lab.com/api/token).
            item["servers"] = [{"url": target.token_base if path == TOKEN_PATH else target.base_url}]
        for operation in item.values():
            if isinstance(operation, dict) and "servers" in operation:
                operation["servers"] = [{"url": target.token_base if path == TOKEN_PATH else target.base_url}]
    return spec


def auth_tier(target: Target) -> str:
    """The strongest tier with a key; Disabled when no key is given at all."""
    for tier in _TIER_PREFERENCE:
        if target.has_key(tier):
            return tier
    disabled("no API key for any tier (--key-internal, --key-pro or --key-free)")


def _sanitization(target: Target) -> dict[str, Any]:
    return {
        "enabled": True,
        # Header and body members whose values schemathesis replaces in its output (curl line included).
        "keys-to-sanitize": [
            "authorization",
            "x-api-key",
            "api_key",
            "apikey",
            "task_token",
            "token",
            "access_token",
            "cookie",
            "set-cookie",
            "proxy-authorization",
        ],
        "sensitive-markers": ["token", "key", "secret", "auth", "passw"],
        "replacement": "[Filtered]",
    }


def _config(target: Target, budget: Budget) -> SchemathesisConfig:
    data: dict[str, Any] = {
        # The /v1 host; the token exchange gets its own base URL per call (``call_kwargs``): schemathesis
        # sends every case to the configured base URL and ignores per-path servers when one is set.
        "base-url": target.base_url,
        "request-timeout": target.timeout,
        "output": {"sanitization": _sanitization(target)},
        "generation": {
            "max-examples": budget.examples,
            "no-shrink": True,
            "deterministic": budget.seed is None,
            "database": "none",
        },
        "phases": {"stateful": {"max-steps": budget.stateful_steps}},
        "warnings": False,
    }
    if budget.seed is not None:
        data["seed"] = budget.seed
    return SchemathesisConfig.from_dict(data)


def call_kwargs(target: Target, case: Case) -> dict[str, Any]:
    """Transport arguments of one call: POST /api/token goes to ``Target.token_base``."""
    return {"base_url": target.token_base} if case.operation.path == TOKEN_PATH else {}


# --------------------------------------------------------------------------------------------- auth


def _register_auth(schema: BaseSchema, target: Target, api: Api, tier: str) -> None:
    key = target.key(tier)

    class TaskTokenAuth:
        """``tier``'s task token for /v1 (cached, refreshed by ``Api.token``); for /api/token the key."""

        def get(self, case: Case, ctx: schemathesis.AuthContext) -> str:
            if case.operation.path == TOKEN_PATH or target.profile == "fortytwo":
                return key
            return api.token(tier)

        def set(self, case: Case, data: str, ctx: schemathesis.AuthContext) -> None:
            headers = case.headers if case.headers is not None else {}
            headers["Authorization"] = f"Bearer {data}"
            case.headers = headers

    # refresh_interval None: no second cache on top of Api's, which knows the 60 s expiry. retry_on []:
    # a 401 to a fresh token is a finding, not a reason to fetch another token and try again.
    schema.auth(refresh_interval=None, retry_on=[])(TaskTokenAuth)


def build_schema(target: Target, api: Api, budget: Budget) -> BaseSchema:
    """The schemathesis schema of ``target``'s profile, with servers, auth, hooks and bounds applied."""
    schema = schemathesis.openapi.from_dict(prepared_spec(target), config=_config(target, budget))
    _register_auth(schema, target, api, auth_tier(target))
    register_hooks(schema, target)
    return schema
