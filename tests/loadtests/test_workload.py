"""loadtests.workload and loadtests.workload_input: length specs, their distributions, the prompts file,
the options, multi-turn sessions."""

from __future__ import annotations

import argparse
import json
import random
import statistics

import configargparse  # type: ignore[import-untyped]  # Locust's parser; it does not import Locust
import pytest

from loadtests.options import DEFAULTS, HarnessConfig, add_arguments
from loadtests.workload import FOLLOW_UP, Workload, WorkloadError, synthetic_prompt
from loadtests.workload_input import DEFAULT_LOGNORMAL_MAX, Lengths, lengths_arg, parse_lengths, read_prompts

PROMPT = "Write a short story about a lighthouse keeper."


def _workload(**kw: object) -> Workload:
    return Workload(**{"prompt": PROMPT, "max_tokens": 32, **kw})  # type: ignore[arg-type]


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


# ------------------------------------------------------------------------------------ length specs
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("fixed:5", Lengths("fixed", 5)),
        (" fixed:5 ", Lengths("fixed", 5)),
        ("uniform:1,10", Lengths("uniform", 1, 10)),
        ("uniform:7,7", Lengths("uniform", 7, 7)),
        ("lognormal:100,0.5", Lengths("lognormal", 100, 0.5, DEFAULT_LOGNORMAL_MAX)),
        ("lognormal:100, 0.5, max=300", Lengths("lognormal", 100, 0.5, 300)),
        ("lognormal:1.5,0", Lengths("lognormal", 1.5, 0, DEFAULT_LOGNORMAL_MAX)),
    ],
)
def test_good_length_specs(spec, expected):
    assert parse_lengths(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected fixed:N, uniform:MIN,MAX or lognormal:MEDIAN,SIGMA"),
        ("fixed", "expected fixed:N"),
        ("gamma:2,3", "expected fixed:N"),
        ("fixed:0", "N must be a whole number of at least 1, not '0'"),
        ("fixed:1.5", "N must be a whole number"),
        ("fixed:x", "N must be a whole number"),
        ("fixed:1,2", "fixed takes N"),
        ("uniform:5", "uniform takes MIN,MAX"),
        ("uniform:0,3", "MIN must be a whole number of at least 1"),
        ("uniform:5,2", "MIN 5 is above MAX 2"),
        ("lognormal:100", "lognormal takes MEDIAN,SIGMA"),
        ("lognormal:0.5,1", "MEDIAN must be a number of at least 1"),
        ("lognormal:100,-1", "SIGMA must be a number of at least 0"),
        ("lognormal:100,nan", "SIGMA must be a number"),
        ("lognormal:inf,1", "MEDIAN must be a number"),
        ("lognormal:100,1,max=50", "max=50 is below the median 100"),
        ("lognormal:100,1,max=0", "max must be a whole number of at least 1"),
        ("fixed:5,max=10", "max= bounds a lognormal spec only"),
    ],
)
def test_every_bad_length_spec_says_what_is_wrong(spec, message):
    with pytest.raises(WorkloadError, match="length spec") as info:
        parse_lengths(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_spec_on_the_command_line_is_a_usage_error(capsys):
    parser = configargparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--output-tokens", "uniform:5,2"])
    assert info.value.code == 2
    assert "--output-tokens: length spec 'uniform:5,2': MIN 5 is above MAX 2" in capsys.readouterr().err
    with pytest.raises(argparse.ArgumentTypeError):
        lengths_arg("fixed:0")
    assert lengths_arg(" fixed:3 ") == "fixed:3" and lengths_arg("") == ""


# ---------------------------------------------------------------------------------- distributions
def test_draws_are_deterministic_for_a_seed():
    lengths = parse_lengths("lognormal:200,1")
    a, b, c = random.Random(7), random.Random(7), random.Random(8)
    first = [lengths.draw(a) for _ in range(50)]
    assert first == [lengths.draw(b) for _ in range(50)]
    assert first != [lengths.draw(c) for _ in range(50)]


def test_uniform_stays_within_its_bounds_and_reaches_both():
    rng = random.Random(1)
    draws = {parse_lengths("uniform:3,9").draw(rng) for _ in range(2000)}
    assert draws == set(range(3, 10))


def test_lognormal_median_is_the_median_asked_for():
    rng = random.Random(2)
    draws = [parse_lengths("lognormal:300,0.8,max=100000").draw(rng) for _ in range(20000)]
    assert statistics.median(draws) == pytest.approx(300, rel=0.03)
    assert min(draws) >= 1


def test_lognormal_is_clipped_to_its_max_and_to_1():
    rng = random.Random(3)
    draws = [parse_lengths("lognormal:50,3,max=120").draw(rng) for _ in range(5000)]
    assert max(draws) == 120 and min(draws) == 1


def test_fixed_is_always_n():
    assert {parse_lengths("fixed:17").draw(random.Random(s)) for s in range(20)} == {17}


def test_a_synthetic_prompt_has_about_n_words_and_asks_for_the_answer_length():
    text = synthetic_prompt(random.Random(0), 100, 64)
    assert len(text.split()) == 100
    assert text.endswith("Write at least 64 words.")
    assert text == synthetic_prompt(random.Random(0), 100, 64)
    assert len(synthetic_prompt(random.Random(0), 1, 64).split()) == 6  # one word at least, then the ask


# ------------------------------------------------------------------------------------ prompts file
def _file(tmp_path, *lines: str):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_prompts_file_gives_its_prompts_in_order(tmp_path):
    path = _file(
        tmp_path,
        json.dumps({"prompt": "Hi."}),
        "",
        json.dumps(
            {
                "messages": [{"role": "system", "content": "Be brief."}, _user("Name a colour.")],
                "max_tokens": 8,
                "followups": ["Another?"],
            }
        ),
    )
    first, second = read_prompts(path)
    assert first.messages == (("user", "Hi."),) and first.max_tokens is None and first.followups == ()
    assert second.messages == (("system", "Be brief."), ("user", "Name a colour."))
    assert second.max_tokens == 8 and second.followups == ("Another?",)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["", "  "], "holds no prompts"),
        (['{"prompt": "a"}', "{nope"], "line 2: not JSON"),
        (["[1, 2]"], 'line 1: expected an object with "prompt" or "messages"'),
        (['{"max_tokens": 3}'], 'line 1: expected an object with "prompt" or "messages"'),
        (['{"prompt": "a", "messages": []}'], "(one of them)"),
        (['{"prompt": "a", "max_token": 3}'], "unknown key(s) max_token"),
        (['{"prompt": ""}'], '"prompt" must be a non-empty string'),
        (['{"prompt": 3}'], '"prompt" must be a non-empty string'),
        (['{"messages": []}'], '"messages" must be a non-empty list'),
        (['{"messages": "hi"}'], '"messages" must be a non-empty list'),
        (['{"messages": [{"role": "user"}]}'], '"messages" must be a non-empty list'),
        (['{"messages": [{"role": "user", "content": [1]}]}'], '"messages" must be a non-empty list'),
        (['{"prompt": "a", "max_tokens": 0}'], '"max_tokens" must be a whole number of at least 1'),
        (['{"prompt": "a", "max_tokens": "5"}'], '"max_tokens" must be a whole number'),
        (['{"prompt": "a", "max_tokens": true}'], '"max_tokens" must be a whole number'),
        (['{"prompt": "a", "followups": "more"}'], '"followups" must be a list of strings'),
    ],
)
def test_every_bad_prompts_file_names_its_problem_in_one_line(tmp_path, lines, message):
    with pytest.raises(WorkloadError) as info:
        read_prompts(_file(tmp_path, *lines))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_prompts_file_is_named(tmp_path):
    with pytest.raises(WorkloadError, match=r"cannot read the prompts file .*missing\.jsonl"):
        read_prompts(tmp_path / "missing.jsonl")


# ----------------------------------------------------------------------------------- the options
def _config(*argv: str) -> HarnessConfig:
    parser = configargparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return HarnessConfig.from_options(parser.parse_args(list(argv)))


def test_without_workload_options_every_request_is_the_prompt_with_max_tokens():
    cfg = _config()
    assert cfg.workload == Workload(prompt=DEFAULTS["prompt"], max_tokens=DEFAULTS["max_tokens"])
    conversation = cfg.workload.conversation("0/pro/0")
    for _ in range(3):
        turn = conversation.next_turn()
        assert (turn.number, turn.messages, turn.max_tokens) == (1, [_user(DEFAULTS["prompt"])], 32)
        conversation.answered(turn, "reply")
    assert conversation.single() == [_user(DEFAULTS["prompt"])]


def test_the_options_reach_the_workload(tmp_path):
    path = _file(tmp_path, json.dumps({"prompt": "Hi."}))
    cfg = _config("--output-tokens", "uniform:4,8", "--prompts-file", str(path), "--turns", "3")
    assert cfg.workload.output_tokens == Lengths("uniform", 4, 8)
    assert cfg.workload.prompts == read_prompts(path) and cfg.workload.turns == 3
    assert _config("--prompt-tokens", "fixed:9", "--workload-seed", "5").workload.seed == 5
    with pytest.raises(WorkloadError, match="exclude each other"):
        _config("--prompt-tokens", "fixed:9", "--prompts-file", str(path))
    with pytest.raises(WorkloadError, match="line 1"):
        _config("--prompts-file", str(_file(tmp_path, "{")))


# -------------------------------------------------------------------------------------- sessions
def test_turn_k_resends_the_earlier_turns_and_replies_in_order():
    conversation = _workload(turns=3).conversation("0/pro/0")
    one = conversation.next_turn()
    assert (one.number, one.messages) == (1, [_user(PROMPT)])
    conversation.answered(one, "first reply")
    two = conversation.next_turn()
    assert two.number == 2
    assert two.messages == [_user(PROMPT), _assistant("first reply"), _user(FOLLOW_UP)]
    conversation.answered(two, "second reply")
    three = conversation.next_turn()
    assert three.messages == [*two.messages, _assistant("second reply"), _user(FOLLOW_UP)]
    conversation.answered(three, "third reply")
    assert conversation.next_turn().messages == [_user(PROMPT)]  # a new session


def test_a_refused_turn_is_sent_again_and_a_failed_one_ends_the_session():
    conversation = _workload(turns=3).conversation("0/pro/0")
    conversation.answered(conversation.next_turn(), "r1")
    two = conversation.next_turn()
    conversation.refused(two)
    assert conversation.next_turn() is two
    # Sent again and neither answered nor refused this time: it failed, the next request opens anew.
    assert conversation.next_turn().number == 1


def test_a_session_keeps_its_model():
    conversation = _workload(turns=2).conversation("0/pro/0")
    assert conversation.keep_model("42-logic") == "42-logic"
    conversation.answered(conversation.next_turn(), "r1")
    assert conversation.keep_model("42-coder") == "42-logic"
    conversation.answered(conversation.next_turn(), "r2")
    assert conversation.keep_model("42-coder") == "42-coder"  # the session is over


def test_a_single_turn_conversation_keeps_no_state():
    conversation = _workload(turns=4).conversation("0/internal/0", multi_turn=False)
    assert [conversation.next_turn().number for _ in range(3)] == [1, 1, 1]
    assert conversation.keep_model("42-think") == "42-think"
    assert conversation.keep_model("42-logic") == "42-logic"


def test_generated_sessions_draw_each_prompt_and_cap_anew():
    workload = _workload(
        prompt_tokens=parse_lengths("uniform:20,200"), output_tokens=parse_lengths("uniform:5,500"), turns=2
    )
    conversation = workload.conversation("0/pro/0")
    one = conversation.next_turn()
    conversation.answered(one, "r1")
    two = conversation.next_turn()
    follow_up = two.messages[-1]["content"]
    assert two.messages[:2] == [*one.messages, _assistant("r1")]
    assert follow_up != one.messages[0]["content"]
    assert follow_up.endswith(f"Write at least {two.max_tokens} words.")
    assert one.messages[0]["content"].endswith(f"Write at least {one.max_tokens} words.")
    # The same user draws the same sequence; another user another one.
    again = workload.conversation("0/pro/0").next_turn()
    assert (again.messages, again.max_tokens) == (one.messages, one.max_tokens)
    assert workload.conversation("0/pro/1").next_turn().messages != one.messages


def test_a_file_session_uses_its_followups_then_the_fixed_one(tmp_path):
    prompts = read_prompts(
        _file(tmp_path, json.dumps({"prompt": "Hi.", "max_tokens": 9, "followups": ["More?"]}))
    )
    conversation = _workload(prompts=prompts, turns=3, output_tokens=parse_lengths("fixed:100")).conversation(
        "x"
    )
    one = conversation.next_turn()
    assert (one.messages, one.max_tokens) == ([_user("Hi.")], 9)  # the line's max_tokens wins
    conversation.answered(one, "a")
    two = conversation.next_turn()
    assert two.messages[-1] == _user("More?") and two.max_tokens == 9
    conversation.answered(two, "b")
    assert conversation.next_turn().messages[-1] == _user(FOLLOW_UP)
