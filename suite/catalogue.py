"""The requirement catalogue: load, validate and filter ``specs/requirements.yaml``.

A requirement ID is the unit of meaning shared by the catalogue, the tests, the report and the
planted-fault self-tests; this module is the only place that reads the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

from suite.resources import specs_dir

__all__ = [
    "AREAS",
    "LEVELS",
    "PROFILES",
    "Catalogue",
    "CatalogueError",
    "Quote",
    "Requirement",
    "load_catalogue",
]

Level = Literal["MUST", "SHOULD", "MAY"]
Profile = Literal["42ai", "fortytwo", "both"]

#: Strongest first: selecting a level selects it and every stronger one.
LEVELS: tuple[Level, ...] = ("MUST", "SHOULD", "MAY")
PROFILES: tuple[str, ...] = ("42ai", "fortytwo")
AREAS: tuple[str, ...] = (
    "auth",
    "models",
    "limits",
    "chat",
    "streaming",
    "embeddings",
    "batch",
    "pipeline",
    "errors",
    "sdk",
    "spec",
)


class CatalogueError(ValueError):
    """The catalogue file is missing, unreadable or does not match its schema."""


@dataclass(frozen=True)
class Quote:
    """An exact passage of a seed document that a requirement rests on."""

    file: str
    quote: str


@dataclass(frozen=True)
class Requirement:
    """One normative statement, as the catalogue holds it."""

    id: str
    level: Level
    profile: Profile
    area: str
    statement: str
    source: Quote
    operation: str | None = None
    status: int | None = None
    headers: tuple[str, ...] = ()
    interpretation: str | None = None
    see_also: tuple[Quote, ...] = ()
    #: Why no client can force the condition (a full server's 503, a 500): judged only when it occurs.
    unforceable: str | None = None

    @property
    def profiles(self) -> tuple[str, ...]:
        """The concrete profiles this requirement applies to."""
        return PROFILES if self.profile == "both" else (self.profile,)

    @property
    def quotes(self) -> tuple[Quote, ...]:
        """Every quoted passage, the main source first."""
        return (self.source, *self.see_also)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping in catalogue order, without empty optional fields."""
        data: dict[str, Any] = {
            "id": self.id,
            "level": self.level,
            "profile": self.profile,
            "area": self.area,
            "statement": self.statement,
            "source": {"file": self.source.file, "quote": self.source.quote},
        }
        if self.operation is not None:
            data["operation"] = self.operation
        if self.status is not None:
            data["status"] = self.status
        if self.headers:
            data["headers"] = list(self.headers)
        if self.interpretation is not None:
            data["interpretation"] = self.interpretation
        if self.see_also:
            data["see_also"] = [{"file": q.file, "quote": q.quote} for q in self.see_also]
        if self.unforceable is not None:
            data["unforceable"] = self.unforceable
        return data


@dataclass(frozen=True)
class Catalogue:
    """All requirements, in file order, indexed by ID."""

    requirements: tuple[Requirement, ...]
    seeds: tuple[str, ...] = ()
    #: The catalogue format's version (``version`` in the file).
    format_version: int = 1
    _by_id: dict[str, Requirement] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for requirement in self.requirements:
            if requirement.id in self._by_id:
                raise CatalogueError(f"duplicate requirement id {requirement.id}")
            self._by_id[requirement.id] = requirement

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements)

    def __len__(self) -> int:
        return len(self.requirements)

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self._by_id

    def __getitem__(self, requirement_id: str) -> Requirement:
        try:
            return self._by_id[requirement_id]
        except KeyError:
            raise KeyError(f"unknown requirement id {requirement_id!r}") from None

    def select(
        self,
        *,
        profile: str | None = None,
        level: str | None = None,
        areas: Iterable[str] | None = None,
    ) -> list[Requirement]:
        """Requirements for ``profile`` at ``level`` or stronger (MUST < SHOULD < MAY), in file order."""
        max_rank = LEVELS.index(level.upper()) if level else len(LEVELS) - 1
        wanted_areas = set(areas) if areas is not None else None
        return [
            r
            for r in self.requirements
            if (profile is None or profile in r.profiles)
            and LEVELS.index(r.level) <= max_rank
            and (wanted_areas is None or r.area in wanted_areas)
        ]


def _quote(data: dict[str, Any]) -> Quote:
    return Quote(file=data["file"], quote=data["quote"])


def _requirement(data: dict[str, Any]) -> Requirement:
    return Requirement(
        id=data["id"],
        level=data["level"],
        profile=data["profile"],
        area=data["area"],
        statement=data["statement"],
        source=_quote(data["source"]),
        operation=data.get("operation"),
        status=data.get("status"),
        headers=tuple(data.get("headers", ())),
        interpretation=data.get("interpretation"),
        see_also=tuple(_quote(q) for q in data.get("see_also", ())),
        unforceable=data.get("unforceable"),
    )


def catalogue_schema(directory: Path | None = None) -> dict[str, Any]:
    """The JSON Schema the catalogue file must match."""
    path = (directory or specs_dir()) / "requirements.schema.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read, schema-check and index the catalogue; raise :class:`CatalogueError` with the first problem."""
    if path is None:
        return _default_catalogue()
    return _load(path)


@cache
def _default_catalogue() -> Catalogue:
    return _load(specs_dir() / "requirements.yaml")


def _load(path: Path) -> Catalogue:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc
    validator = jsonschema.Draft202012Validator(catalogue_schema(path.parent))
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise CatalogueError(f"{path}: {where}: {error.message}")
    return Catalogue(
        requirements=tuple(_requirement(item) for item in raw["requirements"]),
        seeds=tuple(raw.get("seeds", ())),
        format_version=int(raw["version"]),
    )
