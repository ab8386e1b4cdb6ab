"""``--requirements EXPR`` (a -k-style expression over IDs, prefixes and areas) and ``--level``."""

from __future__ import annotations

import pytest

from suite.selection import SelectionError, level_admits, parse_filter


def _selected(catalogue, expression):
    wanted = parse_filter(expression)
    return {r.id for r in catalogue if wanted(r)}


def test_exact_id(catalogue):
    assert _selected(catalogue, "STREAM-003") == {"STREAM-003"}


def test_prefix_or_id(catalogue):
    selected = _selected(catalogue, "AUTH or STREAM-003")
    assert "STREAM-003" in selected and "AUTH-001" in selected and "AUTH-013" in selected
    assert not any(i.startswith(("CHAT", "STREAM-00")) and i != "STREAM-003" for i in selected)


def test_area_name_and_not(catalogue):
    selected = _selected(catalogue, "streaming and not STREAM-00?")
    assert selected == {r.id for r in catalogue if r.area == "streaming" and not r.id.startswith("STREAM-00")}


def test_parentheses_and_case_insensitivity(catalogue):
    assert _selected(catalogue, "(auth-001 OR auth-002) and not AUTH-002") == {"AUTH-001"}


def test_commas_mean_or(catalogue):
    assert _selected(catalogue, "AUTH-001,AUTH-002") == {"AUTH-001", "AUTH-002"}


def test_empty_expression_selects_everything(catalogue):
    assert _selected(catalogue, None) == {r.id for r in catalogue}


@pytest.mark.parametrize("expression", ["AUTH and", "(AUTH", "or AUTH", "AUTH )", "not"])
def test_malformed_expression_is_a_selection_error(expression):
    with pytest.raises(SelectionError, match="--requirements"):
        parse_filter(expression)


@pytest.mark.parametrize(
    "selected, level, admitted",
    [
        ("must", "MUST", True),
        ("must", "SHOULD", False),
        ("should", "SHOULD", True),
        ("should", "MAY", False),
        ("may", "MAY", True),
        ("may", "MUST", True),
    ],
)
def test_level_selects_itself_and_stronger(selected, level, admitted):
    assert level_admits(selected, level) is admitted


def test_unknown_level_is_a_selection_error():
    with pytest.raises(SelectionError):
        level_admits("could", "MUST")
