"""Settings come from the command line, then the environment, then conform42.toml (with ${ENV})."""

from __future__ import annotations

from pathlib import Path

import pytest

from suite.config import ConfigError, resolve_settings, substitute_env


def _write(tmp_path: Path, text: str, name: str = "conform42.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_command_line_beats_environment_beats_file(tmp_path):
    _write(tmp_path, 'target = "http://file"\nprofile = "fortytwo"\nlevel = "should"\n'
                     '[keys]\nfree = "file-free"\npro = "file-pro"\n')
    env = {"CONFORM42_TARGET": "http://env", "CONFORM42_LEVEL": "must", "CONFORM42_KEY_PRO": "env-pro"}
    settings = resolve_settings({"target": "http://cli"}, env, cwd=tmp_path)
    assert settings.target == "http://cli"
    assert settings.level == "must"
    assert settings.profile == "fortytwo"
    assert dict(settings.keys) == {"free": "file-free", "pro": "env-pro"}


def test_cli_key_beats_environment_key(tmp_path):
    settings = resolve_settings({"key_free": "cli-free"}, {"CONFORM42_KEY_FREE": "env-free"}, cwd=tmp_path)
    assert settings.keys["free"] == "cli-free"


def test_file_values_substitute_environment_variables(tmp_path):
    _write(tmp_path, 'target = "https://${HOST}/api"\n[keys]\nfree = "${FREE_KEY}"\npro = "${PRO_KEY:-}"\n')
    settings = resolve_settings({}, {"HOST": "example.org", "FREE_KEY": "sk-1"}, cwd=tmp_path)
    assert settings.target == "https://example.org/api"
    assert dict(settings.keys) == {"free": "sk-1"}  # an empty optional key means "not given"


def test_unset_variable_without_default_is_an_error_naming_it(tmp_path):
    _write(tmp_path, 'target = "${NOT_SET_ANYWHERE}"\n')
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        resolve_settings({}, {}, cwd=tmp_path)


def test_substitute_env_uses_default_only_when_unset():
    assert substitute_env("${A:-x}-${B:-y}", {"A": "1"}, where="t") == "1-y"


def test_explicit_config_file_is_used_instead_of_the_working_directory_one(tmp_path):
    _write(tmp_path, 'target = "http://cwd"\n')
    other = _write(tmp_path, 'target = "http://named"\n', name="other.toml")
    settings = resolve_settings({"config": str(other)}, {}, cwd=tmp_path)
    assert settings.target == "http://named"
    assert settings.config_file == other


def test_config_file_from_environment_variable(tmp_path):
    named = _write(tmp_path, 'profile = "fortytwo"\n', name="ci.toml")
    assert resolve_settings({}, {"CONFORM42_CONFIG": str(named)}, cwd=tmp_path / "..").profile == "fortytwo"


def test_missing_named_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_settings({"config": str(tmp_path / "nope.toml")}, {}, cwd=tmp_path)


@pytest.mark.parametrize("text, message", [
    ('targt = "x"\n', "unknown setting"),
    ("target = \n", "not valid TOML"),
    ('[keys]\ngold = "x"\n', "must map tiers"),
    ('profile = "openai"\n', "profile must be one of"),
    ('request_timeout = -1\n', "must be > 0"),
], ids=["typo", "bad-toml", "unknown-tier", "bad-profile", "bad-timeout"])
def test_bad_file_is_a_one_line_config_error(tmp_path, text, message):
    _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        resolve_settings({}, {}, cwd=tmp_path)


def test_defaults_without_any_source(tmp_path):
    settings = resolve_settings({}, {}, cwd=tmp_path)
    assert (settings.target, settings.profile, settings.level) == (None, "42ai", "may")
    assert settings.request_timeout == 30.0
    assert settings.reference_engine == "vllm"


def test_redacted_settings_hold_no_key(tmp_path):
    settings = resolve_settings({"key_pro": "sk-secret-pro"}, {}, cwd=tmp_path)
    redacted = settings.redacted()
    assert "sk-secret-pro" not in repr(redacted)
    assert redacted["keys"] == {"free": "not given", "pro": "given", "internal": "not given"}
