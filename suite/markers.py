"""``@requirement("ID")``: the tag that ties a behaviour test to catalogue entries.

The plugin reads the marker to build the per-requirement report; a meta-test checks that every ID
exists in the catalogue and that every catalogue entry has at least one test.
"""

from __future__ import annotations

import pytest

__all__ = ["MARKER", "requirement"]

MARKER = "requirement"


def requirement(*ids: str) -> pytest.MarkDecorator:
    """Tag a test with the requirement IDs it checks (its outcome counts for each of them)."""
    if not ids:
        raise ValueError("@requirement needs at least one requirement ID")
    decorator: pytest.MarkDecorator = getattr(pytest.mark, MARKER)(*ids)
    return decorator
