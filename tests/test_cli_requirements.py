"""``conform42 requirements`` prints the catalogue in three formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from suite.cli import main


def test_json_lists_every_requirement_with_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["count"] == len(payload["requirements"]) >= 60
    for item in payload["requirements"]:
        assert {"id", "level", "profile", "area", "statement", "source"} <= set(item)
        assert {"file", "quote"} <= set(item["source"])


def test_filters_narrow_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    main(["requirements", "--format", "json", "--profile", "fortytwo", "--level", "must"])
    payload = json.loads(capsys.readouterr().out)
    assert payload["count"] > 0
    assert {r["level"] for r in payload["requirements"]} == {"MUST"}
    assert {r["profile"] for r in payload["requirements"]} <= {"fortytwo", "both"}


def test_area_filter(capsys: pytest.CaptureFixture[str]) -> None:
    main(["requirements", "--format", "json", "--area", "streaming"])
    payload = json.loads(capsys.readouterr().out)
    assert payload["count"] > 0
    assert {r["area"] for r in payload["requirements"]} == {"streaming"}


def test_markdown_is_a_table_with_one_row_per_requirement(capsys: pytest.CaptureFixture[str]) -> None:
    main(["requirements", "--format", "json"])
    count = json.loads(capsys.readouterr().out)["count"]
    main(["requirements", "--format", "markdown"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| ID | Level |")
    assert len(lines) == count + 2


def test_table_shows_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--area", "auth"]) == 0
    assert "AUTH-001" in capsys.readouterr().out


def test_bad_level_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["requirements", "--level", "sometimes"])
    assert excinfo.value.code == 2


def test_broken_catalogue_exits_2_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "requirements.yaml").write_text("requirements: [", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "suite", "requirements"],
        capture_output=True,
        text=True,
        env={"CONFORM42_SPECS_DIR": str(tmp_path), "PATH": ""},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "conform42"
    result = subprocess.run(
        [str(script), "requirements", "--format", "json", "--area", "auth"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["count"] > 0
