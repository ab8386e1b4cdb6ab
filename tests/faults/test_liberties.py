"""Every planted liberty is well formed and really shows: its probe sees it on the server with the
liberty and not on the clean one; the path liberties set up what they say (tests of the proxies, the
busy machine and the zero-delay engine). This proves the liberties, not the suite (``liberties_prove.py``)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from suite.catalogue import load_catalogue
from tests.faults.catalogue import AREAS
from tests.faults.liberties import LIBERTIES, by_area
from tests.faults.liberties_probes import PROBES, LibertyProbe
from tests.faults.liberties_prove import busy_machine
from tests.faults.liberties_report import markdown_table, score_line
from tests.faults.liberties_serve import build_liberty
from tests.faults.probes import SERVER_OPTIONS
from tests.faults.prove import Score
from tests.faults.serve import build
from tests.support.uvicorn_thread import serving

SERVER_SIDE = sorted(
    n for n, lib in LIBERTIES.items() if not (lib.intermediary or lib.busy or lib.token_delay_s == 0)
)
PATH_SIDE = sorted(set(LIBERTIES) - set(SERVER_SIDE))


def test_catalogue_has_at_least_20_liberties_in_every_area():
    assert len(LIBERTIES) >= 20
    assert {area: len(libs) for area, libs in by_area().items() if not libs} == {}
    assert set(by_area()) == set(AREAS)


def test_every_liberty_says_what_allows_it_and_names_real_should_requirements():
    catalogue = {r.id: r for r in load_catalogue()}
    assert [n for n, lib in LIBERTIES.items() if len(lib.allowed_by) < 40 or not lib.description] == []
    wrong = {
        n: [r for r in lib.touches if catalogue.get(r) is None or catalogue[r].level == "MUST"]
        for n, lib in LIBERTIES.items()
    }
    assert {n: ids for n, ids in wrong.items() if ids} == {}, "touches names SHOULD requirements only"


def test_quoted_seed_words_occur_in_the_seeds():
    """What allowed_by quotes from 000/001/002 (the part in double quotes after "000:") is verbatim."""
    seeds = " ".join(
        p.read_text(encoding="utf-8") for p in Path("/work/shared/seeds").glob("*") if p.is_file()
    )
    if not seeds:
        pytest.skip("the seed documents are not beside the checkout")
    flat = "".join(seeds.split())  # the seeds' tables run cells together: compare without whitespace
    for lib in LIBERTIES.values():
        for quote in [q for doc in ("000: ", "001: ", "002: ") for q in _quotes_after(lib.allowed_by, doc)]:
            for piece in quote.split(" ... "):
                assert "".join(piece.split()) in flat, f"{lib.name}: {piece!r} is not in the seeds"


def _quotes_after(text: str, marker: str) -> list[str]:
    if marker not in text:
        return []
    rest = text.split(marker, 1)[1]
    return [rest.split('"')[1]] if rest.startswith('"') and rest.count('"') >= 2 else []


def test_every_server_side_liberty_has_a_probe():
    assert sorted(PROBES) == SERVER_SIDE


def test_readme_table_and_score_line():
    assert markdown_table().count("\n") == len(LIBERTIES) + 1
    line = score_line(Score(77, 77), [])
    assert line.startswith("faults caught 77/77 (100 %) | liberties passed 0/0")


@pytest.fixture(scope="module")
def clean_servers() -> Iterator[dict[str, str]]:
    app42, _ = build("none", **SERVER_OPTIONS)
    app_ft, _ = build("none", **{**SERVER_OPTIONS, "flavour": "fortytwo"})
    with serving(app42) as url42, serving(app_ft) as url_ft:
        yield {"42ai": url42, "fortytwo": url_ft}


def _probe(base_url: str, name: str) -> bool:
    client = LibertyProbe(base_url, LIBERTIES[name].profile)
    try:
        return PROBES[name](client)
    finally:
        client.close()


@pytest.mark.parametrize("name", SERVER_SIDE)
def test_liberty_shows_over_http(name: str):
    options = {**SERVER_OPTIONS, "flavour": LIBERTIES[name].profile}
    with serving(build_liberty(name, **options)) as base_url:
        assert _probe(base_url, name), f"{name}: ({LIBERTIES[name].description}) did not show"


@pytest.mark.parametrize("name", SERVER_SIDE)
def test_clean_server_does_not_show_liberty(clean_servers: dict[str, str], name: str):
    assert not _probe(clean_servers[LIBERTIES[name].profile], name), f"the clean server shows {name}"


def test_path_liberties_serve_the_clean_app_and_say_what_path():
    for name in PATH_SIDE:
        lib = LIBERTIES[name]
        assert lib.intermediary or lib.busy or lib.token_delay_s == 0, name
        _app, gateway_app = build("none", **SERVER_OPTIONS)
        assert lib.apply(gateway_app) is gateway_app


def test_busy_machine_runs_yes_for_the_block_only():
    def yes_running() -> bool:
        out = subprocess.run(["ps", "-eo", "ppid,comm"], capture_output=True, text=True, timeout=10).stdout
        return any(
            line.split()[1:] == ["yes"] and line.split()[0] == str(_pid()) for line in out.splitlines()[1:]
        )

    with busy_machine():
        assert yes_running()
    assert not yes_running()


def _pid() -> int:
    return os.getpid()


def test_zero_delay_engine_answers_a_long_reply_at_once():
    app, _ = build(
        "none", **{**SERVER_OPTIONS, "sim_token_delay": LIBERTIES["engine_zero_delay"].token_delay_s}
    )
    with serving(app) as base_url:
        probe = LibertyProbe(base_url)
        started = time.monotonic()
        answer = probe.chat(max_tokens=1500)
        probe.close()
    assert answer.status_code == 200 and time.monotonic() - started < 2.0
