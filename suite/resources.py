"""Where the specs and the seed documents live.

The specs are data: in a source checkout they sit in ``specs/`` at the repository root; an installed
wheel carries a copy as ``suite/_specs`` (see ``force-include`` in ``pyproject.toml``). Callers ask
for a file by name and never build paths themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SpecsNotFound", "seeds_dir", "specs_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent


class SpecsNotFound(FileNotFoundError):
    """The specs folder is neither installed with the package nor present in the checkout."""


def specs_dir() -> Path:
    """Return the folder holding ``*.openapi.yaml``, ``requirements.yaml`` and its schema."""
    override = os.environ.get("CONFORM42_SPECS_DIR")
    candidates = [Path(override)] if override else []
    candidates += [_PACKAGE_DIR / "_specs", _REPO_ROOT / "specs"]
    for candidate in candidates:
        if (candidate / "requirements.yaml").is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise SpecsNotFound(f"conform42 specs not found (tried {tried}); set CONFORM42_SPECS_DIR")


def seeds_dir() -> Path | None:
    """Return the folder of the source documents, or None when this machine does not have them.

    The seeds are not shipped with the package: they are the upstream documents the catalogue
    quotes, kept beside the project at ``../shared/seeds``.
    """
    override = os.environ.get("CONFORM42_SEEDS_DIR")
    candidate = Path(override) if override else _REPO_ROOT.parent / "shared" / "seeds"
    return candidate if candidate.is_dir() else None
