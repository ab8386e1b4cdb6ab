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
    _write(
        tmp_path,
        'target = "http://file"\nprofile = "fortytwo"\nlevel = "should"\n'
        '[keys]\nfree = "file-free"\npro = "file-pro"\n',
    )
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


@pytest.mark.parametrize(
    "text, message",
    [
        ('targt = "x"\n', "unknown setting"),
        ("target = \n", "not valid TOML"),
        ('[keys]\ngold = "x"\n', "must map tiers"),
        ('profile = "openai"\n', "profile must be one of"),
        ("request_timeout = -1\n", "must be > 0"),
    ],
    ids=["typo", "bad-toml", "unknown-tier", "bad-profile", "bad-timeout"],
)
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


def test_image_url_defaults_to_the_bundled_png_and_comes_from_each_source(tmp_path):
    from suite.samples import PNG_DATA_URL

    assert resolve_settings({}, {}, cwd=tmp_path).image_url == PNG_DATA_URL
    _write(tmp_path, 'image_url = "https://file.example/a.png"\n')
    assert resolve_settings({}, {}, cwd=tmp_path).image_url == "https://file.example/a.png"
    env = {"CONFORM42_IMAGE_URL": "http://env.example/b.png"}
    assert resolve_settings({}, env, cwd=tmp_path).image_url == "http://env.example/b.png"
    assert (
        resolve_settings({"image_url": "data:image/png;base64,AAAA"}, env, cwd=tmp_path).image_url
        == "data:image/png;base64,AAAA"
    )


@pytest.mark.parametrize("value", ["/tmp/chart.png", "file:///tmp/chart.png", "ftp://x/a.png", "chart.png"])
def test_image_url_must_be_data_or_http(tmp_path, value):
    with pytest.raises(ConfigError, match="--image-url must be a data:, http:// or https:// URL"):
        resolve_settings({"image_url": value}, {}, cwd=tmp_path)


def test_accept_skip_from_repeated_and_comma_separated_options_env_and_file(tmp_path):
    cli = resolve_settings({"accept_skip": ["LIMIT-001", "limit-002, LIMIT-001"]}, {}, cwd=tmp_path)
    assert cli.accept_skip == ("LIMIT-001", "LIMIT-002")  # normalised and deduplicated, in order
    env = resolve_settings({}, {"CONFORM42_ACCEPT_SKIP": "AUTH-001,AUTH-002"}, cwd=tmp_path)
    assert env.accept_skip == ("AUTH-001", "AUTH-002")
    _write(tmp_path, 'accept_skip = ["${SKIPPED:-LIMIT-003}"]\n')
    assert resolve_settings({}, {}, cwd=tmp_path).accept_skip == ("LIMIT-003",)
    assert resolve_settings({}, {"CONFORM42_ACCEPT_SKIP": ""}, cwd=tmp_path).accept_skip == ("LIMIT-003",)


def test_accept_skip_defaults_to_none(tmp_path):
    assert resolve_settings({}, {}, cwd=tmp_path).accept_skip == ()


@pytest.mark.parametrize("value", [["NOPE-001"], ["LIMIT-001,AUTH-999"]])
def test_unknown_accepted_skip_ids_are_a_config_error(tmp_path, value):
    with pytest.raises(ConfigError, match=r"--accept-skip: \S+ not in the requirement catalogue"):
        resolve_settings({"accept_skip": value}, {}, cwd=tmp_path)


def test_accept_skip_in_the_file_must_be_ids(tmp_path):
    _write(tmp_path, "accept_skip = [1, 2]\n")
    with pytest.raises(ConfigError, match="requirement IDs"):
        resolve_settings({}, {}, cwd=tmp_path)


@pytest.mark.parametrize(
    "name, value",
    [
        ("target", "example.com"),
        ("target", "ftp://example.com"),
        ("target", "http://"),
        ("token_url", "auth.example.com/api/token"),
    ],
)
def test_target_and_token_url_must_be_http_urls(tmp_path, name, value):
    option = "--" + name.replace("_", "-")
    with pytest.raises(ConfigError, match=f"{option} must be an http:// or https:// URL"):
        resolve_settings({name: value}, {}, cwd=tmp_path)


def test_redacted_settings_show_the_new_options_without_a_long_data_url(tmp_path):
    redacted = resolve_settings({"accept_skip": ["LIMIT-001"]}, {}, cwd=tmp_path).redacted()
    assert redacted["accept_skip"] == ["LIMIT-001"]
    assert redacted["image_url"].startswith("(data: URL, ")
