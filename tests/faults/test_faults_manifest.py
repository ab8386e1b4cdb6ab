"""Every planted fault really shows: its probe sees the deviation on the faulty server and not on the
clean one. This proves the faults themselves, independently of the conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from suite.catalogue import load_catalogue
from tests.faults.catalogue import AREAS, FAULTS, Fault, by_area
from tests.faults.probes import PROBES, SERVER_OPTIONS, Probe
from tests.faults.serve import build
from tests.support.uvicorn_thread import serving

NAMES = sorted(FAULTS)


def _served_paths(fault_name: str = "none") -> set[str]:
    _, gateway_app = build(fault_name, **SERVER_OPTIONS)
    return {str(getattr(route, "path", "")) for route in gateway_app.routes}


SERVED = _served_paths()


def _skip_unless_served(fault: Fault) -> None:
    missing = [path for path in fault.needs if not any(p.startswith(path) for p in SERVED)]
    if missing:
        pytest.skip(f"the reference server has no {', '.join(missing)} yet")


@pytest.fixture(scope="module")
def clean() -> Iterator[str]:
    app, _ = build("none", **SERVER_OPTIONS)
    with serving(app) as base_url:
        yield base_url


def _probe(base_url: str, name: str) -> bool:
    client = Probe(base_url)
    try:
        return PROBES[name](client)
    finally:
        client.close()


def test_catalogue_has_at_least_40_faults_and_two_per_area():
    assert len(FAULTS) >= 40
    assert {area: len(faults) for area, faults in by_area().items() if len(faults) < 2} == {}
    assert set(by_area()) == set(AREAS)


def test_every_fault_names_real_requirements_of_its_area_or_related_ones():
    known = {r.id for r in load_catalogue()}
    unknown = {f.name: [r for r in f.requirements if r not in known] for f in FAULTS.values()}
    assert {name: ids for name, ids in unknown.items() if ids} == {}
    assert all(f.requirements and f.description for f in FAULTS.values())


def test_every_fault_has_a_probe():
    assert sorted(PROBES) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fault_manifests(name: str):
    fault = FAULTS[name]
    _skip_unless_served(fault)
    app, _ = build(name, **SERVER_OPTIONS)
    with serving(app) as base_url:
        assert _probe(base_url, name), f"{name}: the deviation ({fault.description}) did not show"


@pytest.mark.parametrize("name", NAMES)
def test_clean_server_does_not_show_fault(clean: str, name: str):
    _skip_unless_served(FAULTS[name])
    assert not _probe(clean, name), f"the clean server shows {name}: the probe is wrong"
