"""What a run judged against: the package's version, the requirement catalogue's and a digest of the
specs (``conform42 --version``, ``results.json``). Two reports with the same digests judged against the
same documents, whatever the package version says."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from suite.catalogue import load_catalogue
from suite.resources import specs_dir

__all__ = ["describe", "identity", "specs_sha256"]

#: Hex digits of a digest shown and recorded (48 bits: enough to tell documents apart).
_DIGITS = 12


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:_DIGITS]


def specs_sha256(folder: Path | None = None) -> str:
    """One digest over every file of the specs folder (names and contents, in name order)."""
    folder = folder or specs_dir()
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:_DIGITS]


def identity() -> dict[str, object]:
    """The package version, the catalogue (format, size, digest) and the specs' digest."""
    try:
        version: str | None = metadata.version("conform42")
    except metadata.PackageNotFoundError:
        version = None
    catalogue = load_catalogue()
    folder = specs_dir()
    return {
        "conform42": version,
        "catalogue": {
            "format": catalogue.format_version,
            "requirements": len(catalogue),
            "sha256": _file_digest(folder / "requirements.yaml"),
        },
        "specs_sha256": specs_sha256(folder),
    }


def describe() -> str:
    """``conform42 --version``'s text."""
    found = identity()
    catalogue = found["catalogue"]
    assert isinstance(catalogue, dict)
    files = ", ".join(sorted(p.name for p in specs_dir().iterdir() if p.is_file()))
    return (
        f"conform42 {found['conform42'] or '(not installed)'}\n"
        f"catalogue: format {catalogue['format']}, {catalogue['requirements']} requirements, "
        f"sha256 {catalogue['sha256']}\n"
        f"specs: sha256 {found['specs_sha256']} ({files})\n"
    )
