"""The harness's option table (``loadtests.options``) drives the parser, the environment variables and
``HarnessConfig``; the user-count pre-parse of ``python -m loadtests`` reads the same defaults."""

from __future__ import annotations

import configargparse  # type: ignore[import-untyped]  # Locust's parser; it does not import Locust

from loadtests.__main__ import build_argv
from loadtests.harness_option import read_options
from loadtests.options import DEFAULTS, HARNESS_OPTIONS, HarnessConfig, add_arguments


def _parser() -> configargparse.ArgumentParser:
    parser = configargparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return parser


def test_every_table_entry_is_an_option_with_its_default():
    parsed = _parser().parse_args([])
    for option in HARNESS_OPTIONS:
        assert getattr(parsed, option.name) == option.default, option.name
    assert len({o.name for o in HARNESS_OPTIONS}) == len(HARNESS_OPTIONS)


def test_the_config_of_no_options_is_the_config_of_the_defaults():
    # Attributes missing from the parsed options fall back to the same table defaults.
    assert HarnessConfig.from_options(_parser().parse_args([])) == HarnessConfig.from_options(object())


def test_each_option_reads_its_locust_environment_variable(monkeypatch):
    monkeypatch.setenv("LOCUST_MAX_TOKENS", "7")
    monkeypatch.setenv("LOCUST_OPEN_LOOP_KIND", "embed")
    config = HarnessConfig.from_options(_parser().parse_args([]))
    assert (config.max_tokens, config.open_loop_kind) == (7, "embed")
    assert {o.env for o in HARNESS_OPTIONS} >= {"LOCUST_MAX_TOKENS", "LOCUST_FREE_USERS"}


def test_the_user_total_follows_the_table_defaults_and_the_environment(monkeypatch):
    users = sum(DEFAULTS[f"{tier}_users"] for tier in ("free", "pro", "internal"))
    argv = build_argv(["--host", "http://h"])
    assert argv[argv.index("-u") + 1] == str(users)
    monkeypatch.setenv("LOCUST_FREE_USERS", "10")
    argv = build_argv(["--host", "http://h"])
    assert argv[argv.index("-u") + 1] == str(users - DEFAULTS["free_users"] + 10)


def test_locusts_parser_takes_no_abbreviation_so_the_pre_reads_see_what_the_run_gets():
    known, rest = _parser().parse_known_args(["--free-u", "5"])
    assert known.free_users == DEFAULTS["free_users"] and rest == ["--free-u", "5"]
    argv = build_argv(["--free-u", "5", "--pro-users", "0", "--internal-users", "0"])
    assert argv[argv.index("-u") + 1] == str(DEFAULTS["free_users"])  # Locust rejects "--free-u" anyway


def test_read_options_takes_the_command_line_then_the_environment_then_the_default():
    table = [o for o in HARNESS_OPTIONS if o.name in ("free_users", "pro_users", "sweep", "sweep_rates")]
    env = {"LOCUST_PRO_USERS": "6", "LOCUST_SWEEP": "true"}
    known = read_options(table, ["--free-users", "2", "--other", "x", "--sweep-rates", "1,2"], env)
    assert (known.free_users, known.pro_users, known.sweep, known.sweep_rates) == (2, 6, True, "1,2")
    known = read_options(table, [], {"LOCUST_SWEEP": "false"})
    assert (known.free_users, known.sweep, known.sweep_rates) == (DEFAULTS["free_users"], False, "")
