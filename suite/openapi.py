"""The OpenAPI documents in ``specs/``: one per profile, loaded once."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from suite.resources import specs_dir

__all__ = ["SPEC_FILES", "declared_headers", "declared_statuses", "load_spec", "operation"]

#: Profile name -> spec file name in ``specs/``.
SPEC_FILES: dict[str, str] = {
    "42ai": "42ai.openapi.yaml",
    "fortytwo": "fortytwo.openapi.yaml",
}


@cache
def load_spec(profile: str) -> dict[str, Any]:
    """The parsed OpenAPI document of ``profile`` (unresolved ``$ref``s left as they are)."""
    try:
        name = SPEC_FILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(SPEC_FILES)}") from None
    document: dict[str, Any] = yaml.safe_load((specs_dir() / name).read_text(encoding="utf-8"))
    return document


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow local ``$ref`` pointers until ``node`` is not a reference."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def operation(spec: dict[str, Any], op: str) -> dict[str, Any] | None:
    """The operation object for ``"METHOD /path"``, or None when the spec does not declare it."""
    method, _, path = op.partition(" ")
    path_item = spec.get("paths", {}).get(path)
    if not isinstance(path_item, dict):
        return None
    found = path_item.get(method.lower())
    return found if isinstance(found, dict) else None


def declared_statuses(spec: dict[str, Any], op: str) -> set[int]:
    """HTTP status codes the spec declares for ``op`` (empty when the operation is unknown)."""
    found = operation(spec, op)
    if found is None:
        return set()
    return {int(code) for code in found.get("responses", {}) if str(code).isdigit()}


def declared_headers(spec: dict[str, Any], op: str, status: int) -> set[str]:
    """Response header names (lower-cased) declared for ``op`` answering ``status``."""
    found = operation(spec, op)
    if found is None:
        return set()
    response = _resolve(spec, found.get("responses", {}).get(str(status)))
    if not isinstance(response, dict):
        return set()
    return {name.lower() for name in response.get("headers", {})}
