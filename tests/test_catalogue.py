"""The requirement catalogue is well-formed and rests on the documents and the specs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from suite.catalogue import AREAS, Catalogue, CatalogueError, Requirement, load_catalogue
from suite.openapi import declared_headers, declared_statuses, load_spec, operation
from suite.resources import seeds_dir, specs_dir

CATALOGUE = load_catalogue()
IDS = [r.id for r in CATALOGUE]


def test_catalogue_has_at_least_60_requirements(catalogue: Catalogue) -> None:
    assert len(catalogue) >= 60


def test_ids_are_unique_in_the_file() -> None:
    raw = yaml.safe_load((specs_dir() / "requirements.yaml").read_text(encoding="utf-8"))
    ids = [item["id"] for item in raw["requirements"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates


def test_duplicate_ids_are_rejected_by_the_loader(tmp_path: Path) -> None:
    raw = yaml.safe_load((specs_dir() / "requirements.yaml").read_text(encoding="utf-8"))
    raw["requirements"].append(dict(raw["requirements"][0]))
    (tmp_path / "requirements.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    (tmp_path / "requirements.schema.json").write_text(
        (specs_dir() / "requirements.schema.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(CatalogueError, match="duplicate requirement id"):
        load_catalogue(tmp_path / "requirements.yaml")


def test_schema_rejects_an_entry_without_source(tmp_path: Path) -> None:
    raw = yaml.safe_load((specs_dir() / "requirements.yaml").read_text(encoding="utf-8"))
    del raw["requirements"][0]["source"]
    (tmp_path / "requirements.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    (tmp_path / "requirements.schema.json").write_text(
        (specs_dir() / "requirements.schema.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(CatalogueError, match="source"):
        load_catalogue(tmp_path / "requirements.yaml")


@pytest.mark.parametrize("requirement", CATALOGUE, ids=IDS)
def test_id_prefix_matches_area(requirement: Requirement) -> None:
    prefixes = {
        "auth": "AUTH",
        "models": "MODEL",
        "limits": "LIMIT",
        "chat": "CHAT",
        "streaming": "STREAM",
        "embeddings": "EMBED",
        "batch": "BATCH",
        "pipeline": "PIPE",
        "errors": "ERR",
        "sdk": "SDK",
        "spec": "SPEC",
    }
    assert set(prefixes) == set(AREAS)
    assert re.fullmatch(rf"{prefixes[requirement.area]}-\d{{3}}", requirement.id)


@pytest.mark.parametrize("requirement", CATALOGUE, ids=IDS)
def test_inferred_rules_say_why(requirement: Requirement) -> None:
    if requirement.level != "MUST":
        assert requirement.interpretation, f"{requirement.id} is {requirement.level} without interpretation"


@pytest.mark.parametrize("requirement", CATALOGUE, ids=IDS)
def test_every_quote_occurs_verbatim_in_its_seed(requirement: Requirement) -> None:
    folder = seeds_dir()
    if folder is None:
        pytest.skip("seed documents not found at ../shared/seeds (set CONFORM42_SEEDS_DIR to check quotes)")
    for quote in requirement.quotes:
        text = (folder / quote.file).read_text(encoding="utf-8")
        assert quote.quote in text, (
            f"{requirement.id}: quote not found verbatim in {quote.file}: {quote.quote!r}"
        )


def test_catalogue_names_only_known_seed_files(catalogue: Catalogue) -> None:
    used = {q.file for r in catalogue for q in r.quotes}
    assert used <= set(catalogue.seeds)


@pytest.mark.parametrize(
    "requirement", [r for r in CATALOGUE if r.operation], ids=[r.id for r in CATALOGUE if r.operation]
)
def test_named_operation_status_and_headers_exist_in_the_matching_spec(requirement: Requirement) -> None:
    assert requirement.operation is not None
    for profile in requirement.profiles:
        spec = load_spec(profile)
        assert operation(spec, requirement.operation) is not None, (
            f"{requirement.id}: {requirement.operation} missing from the {profile} spec"
        )
        if requirement.status is not None:
            assert requirement.status in declared_statuses(spec, requirement.operation), (
                f"{requirement.id}: status {requirement.status} not declared for "
                f"{requirement.operation} in the {profile} spec"
            )
        for header in requirement.headers:
            assert requirement.status is not None, f"{requirement.id}: a header needs a status"
            assert header.lower() in declared_headers(spec, requirement.operation, requirement.status), (
                f"{requirement.id}: header {header} not declared on {requirement.status} of "
                f"{requirement.operation} in the {profile} spec"
            )


def test_status_and_headers_need_an_operation(catalogue: Catalogue) -> None:
    loose = [r.id for r in catalogue if (r.status is not None or r.headers) and r.operation is None]
    assert not loose


def test_select_by_level_includes_stronger_levels(catalogue: Catalogue) -> None:
    must = catalogue.select(level="MUST")
    should = catalogue.select(level="SHOULD")
    assert must and all(r.level == "MUST" for r in must)
    assert set(must) < set(should)
    assert {r.level for r in should} == {"MUST", "SHOULD"}


def test_select_by_profile_includes_both(catalogue: Catalogue) -> None:
    fortytwo = catalogue.select(profile="fortytwo")
    assert fortytwo
    assert all(r.profile in ("fortytwo", "both") for r in fortytwo)
    assert all(r.profile != "42ai" for r in fortytwo)


def test_lookup_of_unknown_id_names_it(catalogue: Catalogue) -> None:
    with pytest.raises(KeyError, match="NOPE-999"):
        catalogue["NOPE-999"]


def test_unforceable_is_loaded_and_reported(catalogue: Catalogue) -> None:
    """LIMIT-011's 503 needs a server whose GPU memory is full: no client can force it."""
    limit = catalogue["LIMIT-011"]
    assert limit.level == "MUST" and limit.unforceable
    assert limit.to_dict()["unforceable"] == limit.unforceable
    assert "unforceable" not in catalogue["AUTH-001"].to_dict()


def test_schema_rejects_a_blank_unforceable(tmp_path: Path) -> None:
    raw = yaml.safe_load((specs_dir() / "requirements.yaml").read_text(encoding="utf-8"))
    raw["requirements"][0]["unforceable"] = ""
    (tmp_path / "requirements.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    (tmp_path / "requirements.schema.json").write_text(
        (specs_dir() / "requirements.schema.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(CatalogueError, match="unforceable"):
        load_catalogue(tmp_path / "requirements.yaml")


def test_invalid_input_split_keeps_the_must_to_no_5xx(catalogue: Catalogue) -> None:
    """ERR-006 (MUST) forbids a 5xx; rejecting invalid input with a 4xx is ERR-013, a SHOULD."""
    assert catalogue["ERR-006"].level == "MUST" and "5xx" in catalogue["ERR-006"].statement
    assert "4xx" not in catalogue["ERR-006"].statement
    assert catalogue["ERR-013"].level == "SHOULD" and "4xx" in catalogue["ERR-013"].statement
