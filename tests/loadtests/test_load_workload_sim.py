"""``--prompt-tokens``, ``--output-tokens`` and ``--turns`` end to end against the sim engine (whose
prompt tokens are the words of the messages plus 3 per message), and a bad ``--prompts-file`` stopping
the run before any load."""

from __future__ import annotations

import pytest

from tests.loadtests.conftest import run_harness

pytestmark = pytest.mark.slow

CHATS_ONLY = ("--weight-embed", "0", "--weight-batch", "0", "--weight-pipeline", "0")


def test_drawn_lengths_and_two_turn_sessions_reach_the_summary(clean_server, tmp_path):
    run = run_harness(
        tmp_path,
        clean_server.base_url,
        *("-t", "4s", *CHATS_ONLY),
        *("--prompt-tokens", "lognormal:40,0.6,max=400", "--output-tokens", "uniform:4,40", "--turns", "2"),
    )
    assert run.returncode == 0, run.output[-3000:]
    by_turn = run.summary["prompt_tokens_by_turn"]
    first, second = by_turn["1"], by_turn["2"]
    assert first["n"] >= 10 and second["n"] >= 10
    assert first["p90"] > first["p50"]  # drawn lengths, not one prompt
    # A second turn resends the first with its reply: more prompt tokens than any first turn needs.
    assert second["p50"] > first["p50"] and second["mean"] > first["mean"]
    series = [s for s in run.summary["series"] if s["completion_tokens"]["n"]]
    asked = {s["max_tokens_asked"]["p50"] for s in series} | {s["max_tokens_asked"]["p90"] for s in series}
    assert len(asked) > 1 and all(4 <= a <= 40 for a in asked)
    # The generated prompts ask for max_tokens words, which the sim writes: cut at the cap, never short.
    assert all(s["short_of_max_tokens"] == 0 for s in series)
    assert "prompt tokens by turn" in run.output


def test_a_bad_prompts_file_stops_the_run_before_any_load(tmp_path):
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": "x", "max_token": 5}\n', encoding="utf-8")
    run = run_harness(tmp_path, "http://127.0.0.1:9", "--prompts-file", str(bad))
    assert run.returncode == 2
    assert "line 2: unknown key(s) max_token" in run.output and run.summary == {}
