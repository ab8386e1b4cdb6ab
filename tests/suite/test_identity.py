"""``conform42 --version`` and the documents a report records (``suite.identity``)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from suite.cli import main
from suite.identity import identity, specs_sha256
from suite.outcomes import decide_verdict
from suite.report import RunReport
from suite.resources import specs_dir


def test_version_names_the_package_the_catalogue_and_the_specs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"^conform42 \d+\.\d+", out, re.M)
    assert re.search(r"^catalogue: format 1, \d+ requirements, sha256 [0-9a-f]{12}$", out, re.M)
    assert re.search(r"^specs: sha256 [0-9a-f]{12} \(.*requirements\.yaml.*\)$", out, re.M)


def test_the_specs_digest_follows_any_change(tmp_path: Path) -> None:
    copy = tmp_path / "specs"
    shutil.copytree(specs_dir(), copy)
    before = specs_sha256(copy)
    assert specs_sha256(copy) == before  # stable
    (copy / "42ai.openapi.yaml").write_text(
        (copy / "42ai.openapi.yaml").read_text(encoding="utf-8") + "\n# one more line\n", encoding="utf-8"
    )
    assert specs_sha256(copy) != before


def test_results_json_records_the_documents() -> None:
    started = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    report = RunReport(
        target="http://t",
        profile="42ai",
        level="must",
        config={},
        started=started,
        finished=started + timedelta(seconds=1),
        requirements=[],
        tests=[],
        verdict=decide_verdict([]),
    )
    data = json.loads(json.dumps(report.to_dict()))
    found = identity()
    assert data["documents"] == {"catalogue": found["catalogue"], "specs_sha256": found["specs_sha256"]}
