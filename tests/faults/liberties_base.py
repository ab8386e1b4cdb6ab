"""What a planted liberty is, and the registry the liberty modules fill (``liberties.py`` reads it).

A liberty is the mirror of a planted fault: a way of serving the API that the three seed documents
*allow*, though the reference server does not take it. Each one quotes the words (or names the silence)
that allow it in ``allowed_by``, and is applied from outside exactly like a fault: the gateway built by
``create_app`` on the sim engines, wrapped in a middleware (``asgi.py``, ``asgi_body.py``) or given a
swapped component (``swaps.py``). Some liberties change the path to the server instead of the server: an
intermediary in front of it, a busy machine, an engine that answers at once. The proof
(``liberties_prove.py``) runs the suite against each one and expects CONFORMANT with no MUST Fail or
Error; ``touches`` names the SHOULD requirements the liberty may legitimately fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from fastapi import FastAPI
from starlette.types import ASGIApp

from tests.faults.catalogue import AREAS

__all__ = ["LIBERTIES", "Apply", "Intermediary", "Liberty", "liberty"]

Apply = Callable[[FastAPI], ASGIApp]
Intermediary = Literal["slow_proxy", "nginx"]


def _clean(app: FastAPI) -> ASGIApp:
    return app


@dataclass(frozen=True)
class Liberty:
    name: str
    area: str
    description: str
    #: The seed documents' words that allow it (quoted), or a sentence naming their silence.
    allowed_by: str
    #: SHOULD requirements the liberty may fail without being wrong (precision is judged on MUSTs).
    touches: tuple[str, ...] = ()
    apply: Apply = field(default=_clean, repr=False, compare=False)
    #: The profile it is served and judged under: where the requirements it could upset are MUSTs.
    profile: Literal["42ai", "fortytwo"] = "42ai"
    #: Something between the suite and the server (started by the proof, see tests/support/).
    intermediary: Intermediary | None = None
    #: Run ``yes > /dev/null`` beside the server for the whole suite run (one core taken).
    busy: bool = False
    #: The sim engine's seconds per token; None: the proof's default (as for the faults).
    token_delay_s: float | None = None
    #: A --requirements expression selecting the tests the liberty shows in (a filtered run, CI).
    exercises: str = ""
    #: MUST requirements whose Skip the run accepts (``--accept-skip``), as the README tells a user on
    #: this path to: no client can judge them through it. The report lists which ones were skipped.
    accepts: tuple[str, ...] = ()


LIBERTIES: dict[str, Liberty] = {}


def liberty(
    name: str,
    area: str,
    description: str,
    allowed_by: str,
    *,
    touches: str = "",
    profile: Literal["42ai", "fortytwo"] = "42ai",
    intermediary: Intermediary | None = None,
    busy: bool = False,
    token_delay_s: float | None = None,
    exercises: str = "",
    accepts: str = "",
) -> Callable[[Apply], Apply]:
    """Register the decorated ``apply`` as a liberty (see :class:`Liberty` for the fields)."""

    def register(apply: Apply) -> Apply:
        if name in LIBERTIES:
            raise ValueError(f"liberty {name!r} registered twice")
        if area not in AREAS:
            raise ValueError(f"liberty {name!r}: unknown area {area!r}")
        LIBERTIES[name] = Liberty(
            name,
            area,
            description,
            allowed_by,
            tuple(touches.split()),
            apply,
            profile,
            intermediary,
            busy,
            token_delay_s,
            exercises,
            tuple(accepts.split()),
        )
        return apply

    return register
