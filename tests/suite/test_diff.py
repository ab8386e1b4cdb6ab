"""`conform42 diff`: which requirements moved between two runs, grouped by level, and the exit code that
gates on a MUST newly failing; unit tests of ``suite.diff``, the CLI, and two real results.json files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from suite.cli import main
from suite.diff import ABSENT, ResultsFileError, diff_results, load_results, render_diff

UNUSED_TARGET = "--target=http://127.0.0.1:9"


def _entry(rid: str, outcome: str, level: str = "MUST", area: str = "auth") -> dict[str, Any]:
    return {"id": rid, "level": level, "area": area, "statement": f"{rid} holds", "outcome": outcome}


def _results(*entries: dict[str, Any], verdict: str = "CONFORMANT", **extra: Any) -> dict[str, Any]:
    return {"conform42_report": 1, "verdict": verdict, "requirements": list(entries), **extra}


def _ids(changes) -> list[str]:
    return [c.id for c in changes]


def test_each_move_lands_in_its_group():
    old = _results(
        _entry("A-1", "Pass"),
        _entry("A-2", "Fail"),
        _entry("A-3", "Pass"),
        _entry("A-4", "Pass"),
        _entry("A-5", "Skip"),
        _entry("A-6", "Pass"),
        _entry("A-7", "Error"),
        _entry("A-8", "Pass"),
    )
    new = _results(
        _entry("A-1", "Fail"),  # newly failing
        _entry("A-2", "Pass"),  # newly passing
        _entry("A-3", "Error"),  # newly erroring
        _entry("A-4", "Disabled"),  # newly skipped
        _entry("A-5", "Disabled"),  # skipped before and after: no news
        _entry("A-6", "Pass"),  # unchanged
        _entry("A-7", "Fail"),  # Error -> Fail is a new failure
        _entry("A-9", "Fail", level="SHOULD"),  # new to the run
        verdict="NON-CONFORMANT",
    )
    diff = diff_results(old, new)
    assert _ids(diff.newly_failing) == ["A-1", "A-7", "A-9"]
    assert _ids(diff.newly_passing) == ["A-2"]
    assert _ids(diff.newly_erroring) == ["A-3"]
    assert _ids(diff.newly_skipped) == ["A-4", "A-8"]  # A-8 is gone from the newer run
    gone = diff.newly_skipped[1]
    assert (gone.old, gone.new) == ("Pass", ABSENT)
    assert diff.newly_failing[2].old == ABSENT
    assert (diff.old_verdict, diff.new_verdict) == ("CONFORMANT", "NON-CONFORMANT")
    assert diff.must_regressed and diff.exit_code == 1


def test_groups_are_in_level_order_and_only_a_must_regression_gates():
    old = _results(_entry("S-1", "Pass", "SHOULD"), _entry("M-1", "Pass"), _entry("Y-1", "Pass", "MAY"))
    new = _results(_entry("Y-1", "Fail", "MAY"), _entry("S-1", "Fail", "SHOULD"), _entry("M-1", "Pass"))
    diff = diff_results(old, new)
    assert _ids(diff.newly_failing) == ["S-1", "Y-1"]
    assert not diff.must_regressed and diff.exit_code == 0


def test_render_names_id_level_area_statement_and_the_regression():
    old = _results(_entry("AUTH-001", "Pass"), _entry("ERR-003", "Fail", "SHOULD", "errors"))
    new = _results(_entry("AUTH-001", "Fail"), _entry("ERR-003", "Pass", "SHOULD", "errors"), target="x")
    text = render_diff(diff_results(old, new), "old.json", "new.json")
    lines = text.splitlines()
    assert lines[0] == "conform42 diff: old.json -> new.json"
    assert "note: target differs: None -> x" in lines
    failing = lines.index("Newly failing (1)")
    assert lines[failing + 1 : failing + 3] == [
        "  MUST",
        "    AUTH-001 [MUST, auth] Pass -> Fail: AUTH-001 holds",
    ]
    passing = lines.index("Newly passing (1)")
    assert lines[passing + 1] == "  SHOULD"
    assert "ERR-003 [SHOULD, errors] Fail -> Pass" in lines[passing + 2]
    assert lines[-1] == "REGRESSION: MUST requirements newly failing: AUTH-001"


def test_render_says_when_nothing_moved():
    same = _results(_entry("AUTH-001", "Pass"))
    text = render_diff(diff_results(same, same))
    assert "no requirement changed outcome" in text
    assert text.splitlines()[-1] == "no MUST requirement newly failing"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a conform42 results.json"),
        ('{"conform42_report": 1}', "no requirements list"),
        ('{"conform42_report": 1, "requirements": [{"id": "A"}]}', "requirement #1 lacks level, area"),
    ],
    ids=["missing", "not-json", "not-an-object", "no-requirements", "incomplete-entry"],
)
def test_a_bad_file_is_one_line_saying_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ResultsFileError) as caught:
        load_results(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_cli_exit_1_only_for_a_must_newly_failing(tmp_path, capsys):
    old = _write(tmp_path / "old.json", _results(_entry("AUTH-001", "Pass"), _entry("AUTH-002", "Fail")))
    new = _write(tmp_path / "new.json", _results(_entry("AUTH-001", "Fail"), _entry("AUTH-002", "Pass")))
    assert main(["diff", str(old), str(new)]) == 1
    assert "AUTH-001 [MUST, auth] Pass -> Fail" in capsys.readouterr().out
    swapped = _write(
        tmp_path / "swapped.json", _results(_entry("AUTH-001", "Pass"), _entry("AUTH-002", "Pass"))
    )
    assert main(["diff", str(old), str(swapped)]) == 0  # only a pass gained
    assert "Newly passing (1)" in capsys.readouterr().out


def test_cli_json_is_the_machine_readable_diff(tmp_path, capsys):
    old = _write(tmp_path / "old.json", _results(_entry("AUTH-001", "Pass")))
    new = _write(tmp_path / "new.json", _results(_entry("AUTH-001", "Fail"), verdict="NON-CONFORMANT"))
    assert main(["diff", "--json", str(old), str(new)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["newly_failing"] == [
        {"id": "AUTH-001", "level": "MUST", "area": "auth", "statement": "AUTH-001 holds"}
        | {"old": "Pass", "new": "Fail"}
    ]
    assert (data["must_regressed"], data["exit_code"]) == (True, 1)
    assert data["newly_passing"] == data["newly_skipped"] == data["newly_erroring"] == []


def test_cli_usage_error_is_exit_2_with_one_line(tmp_path, capsys):
    good = _write(tmp_path / "good.json", _results(_entry("AUTH-001", "Pass")))
    assert main(["diff", str(good), str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conform42 diff: ") and "nope.json: no such file" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exited:
        main(["diff", str(good)])  # NEW missing: argparse's usage error
    assert exited.value.code == 2


CLEAN_MODULE = """
from suite.markers import requirement

@requirement("AUTH-001")
def test_token():
    pass

@requirement("AUTH-003")
def test_ttl():
    pass
"""


def test_two_real_runs_name_the_newly_failing_must_and_exit_1(run_pytest, run_conform42, tmp_path):
    """A clean fixture run, then the same tests with one MUST failing; both write real results.json."""
    clean = run_pytest(CLEAN_MODULE, UNUSED_TARGET, "--report=old")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    broken_source = CLEAN_MODULE.replace(
        "def test_token():\n    pass",
        "def test_token():\n    from suite.checks import ConformanceFailure\n"
        "    raise ConformanceFailure('no task token', expected='HTTP 200', received='HTTP 500')",
    )
    broken = run_pytest(broken_source, UNUSED_TARGET, "--report=new")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    old, new = tmp_path / "old" / "results.json", tmp_path / "new" / "results.json"

    result = run_conform42(["diff", str(old), str(new)])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: CONFORMANT -> NON-CONFORMANT" in result.stdout
    assert "AUTH-001 [MUST, auth] Pass -> Fail" in result.stdout
    assert "AUTH-003" not in result.stdout  # passed both times: no news

    back = run_conform42(["diff", "--json", str(new), str(old)])
    assert back.returncode == 0, back.stdout + back.stderr
    assert [c["id"] for c in json.loads(back.stdout)["newly_passing"]] == ["AUTH-001"]


def test_runs_judged_against_other_documents_say_so() -> None:
    old = _results(_entry("AUTH-001", "Pass"), documents={"specs_sha256": "aaaaaaaaaaaa"})
    same = _results(_entry("AUTH-001", "Pass"), documents={"specs_sha256": "aaaaaaaaaaaa"})
    other = _results(_entry("AUTH-001", "Pass"), documents={"specs_sha256": "bbbbbbbbbbbb"})
    before = _results(_entry("AUTH-001", "Pass"))  # a report from before the digests were recorded
    assert not any("documents" in n for n in diff_results(old, same).notes)
    assert "judged against other documents: specs sha256 aaaaaaaaaaaa -> bbbbbbbbbbbb" in (
        diff_results(old, other).notes
    )
    assert not any("documents" in n for n in diff_results(before, other).notes)
