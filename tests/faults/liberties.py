"""The planted-liberty catalogue: server variations the seed documents allow (``liberties_base.py``
says what one is). The definitions live in ``liberties_auth.py`` (auth, models, limits),
``liberties_json.py`` (JSON and HTTP framing of every endpoint) and ``liberties_sse.py`` (the event
stream and the path to the server); importing them registers them here."""

from __future__ import annotations

from tests.faults import liberties_auth, liberties_json, liberties_sse  # noqa: F401  (registers them)
from tests.faults.catalogue import AREAS
from tests.faults.liberties_base import LIBERTIES, Liberty

__all__ = ["LIBERTIES", "Liberty", "by_area", "get"]


def get(name: str) -> Liberty:
    try:
        return LIBERTIES[name]
    except KeyError:
        raise KeyError(f"no liberty named {name!r}; known: {', '.join(sorted(LIBERTIES))}") from None


def by_area() -> dict[str, list[Liberty]]:
    return {area: [lib for lib in LIBERTIES.values() if lib.area == area] for area in AREAS}
