"""Every behaviour test names catalogue requirements, and every catalogue requirement has a test.

The suite is collected in a subprocess (``pytest --collect-only --pyargs suite.conformance`` against a
dummy target, nothing is sent) with a tiny plugin that writes each collected test's ``@requirement``
IDs to a file, so parametrised cases and their marks count exactly as pytest sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite.catalogue import Catalogue

REPO = Path(__file__).resolve().parents[2]
#: Modules whose tests need not carry a requirement (the generated property tests tag what they can).
UNTAGGED_ALLOWED = ("suite/conformance/test_properties.py",)

DUMP_PLUGIN = """
import json, os

def pytest_collection_finish(session):
    rows = [{"nodeid": item.nodeid,
             "ids": [i for marker in item.iter_markers("requirement") for i in marker.args]}
            for item in session.items]
    with open(os.environ["CONFORM42_MARKER_DUMP"], "w", encoding="utf-8") as handle:
        json.dump(rows, handle)
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    folder = tmp_path_factory.mktemp("marker-dump")
    (folder / "conform42_marker_dump.py").write_text(DUMP_PLUGIN, encoding="utf-8")
    dump = folder / "markers.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "CONFORM42_MARKER_DUMP": str(dump),
    }
    for name in [k for k in env if k.startswith("CONFORM42_") and k != "CONFORM42_MARKER_DUMP"]:
        del env[name]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "--pyargs",
            "suite.conformance",
            "--target",
            "http://127.0.0.1:9",
            "-p",
            "conform42_marker_dump",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert dump.exists(), (
        f"collection failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    rows: list[dict[str, object]] = json.loads(dump.read_text(encoding="utf-8"))
    assert rows, "no behaviour tests were collected"
    return rows


def _ids(rows: list[dict[str, object]]) -> set[str]:
    return {str(i) for row in rows for i in row["ids"]}  # type: ignore[attr-defined]


def test_marker_ids_exist_in_the_catalogue(collected, catalogue: Catalogue) -> None:
    unknown = {
        row["nodeid"]: sorted(set(row["ids"]) - {r.id for r in catalogue})
        for row in collected
        if set(row["ids"]) - {r.id for r in catalogue}
    }
    assert not unknown, f"tests tagged with requirement IDs that are not in the catalogue: {unknown}"


def test_every_catalogue_requirement_has_a_test(collected, catalogue: Catalogue) -> None:
    untested = sorted(r.id for r in catalogue if r.id not in _ids(collected))
    assert not untested, f"catalogue requirements without any behaviour test: {untested}"


def test_every_behaviour_test_names_a_requirement(collected) -> None:
    untagged = [
        row["nodeid"]
        for row in collected
        if not row["ids"] and not str(row["nodeid"]).startswith(UNTAGGED_ALLOWED)
    ]
    assert not untagged, f"behaviour tests without @requirement: {untagged}"
