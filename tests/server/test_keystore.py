"""The keys file: the demo keys, lookups, and clear errors for every bad entry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reference_server.auth import DEMO_EXTRA_KEYS, DEMO_KEYS, Caller, KeyStore, key_sha256
from reference_server.config import DEMO_KEYS_FILE


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text, encoding="utf-8")
    return path


def entry(key: str = "sk-42ai-k1", tier: str = "free", label: str = "k1") -> str:
    return f'[[keys]]\nsha256 = "{sha(key)}"\ntier = "{tier}"\nlabel = "{label}"\n'


def test_demo_keys_file_has_one_key_per_tier_with_its_label():
    store = KeyStore.from_file(DEMO_KEYS_FILE)
    for tier, key in DEMO_KEYS.items():
        assert store.lookup(key) == Caller(sha(key)[:16], f"demo-{tier}", tier)


def test_demo_extra_keys_are_second_free_and_pro_keys():
    store = KeyStore.from_file(DEMO_KEYS_FILE)
    assert set(DEMO_EXTRA_KEYS) == {"free", "pro"}
    for tier, key in DEMO_EXTRA_KEYS.items():
        caller = store.lookup(key)
        assert caller is not None
        assert (caller.tier, caller.label) == (tier, f"demo-{tier}-2")
        assert caller.key_id != store.lookup(DEMO_KEYS[tier]).key_id  # type: ignore[union-attr]
    assert len(store) == 5


def test_demo_keys_file_lists_every_plaintext_key_in_a_comment():
    text = DEMO_KEYS_FILE.read_text(encoding="utf-8")
    for key in [*DEMO_KEYS.values(), *DEMO_EXTRA_KEYS.values()]:
        lines = [line for line in text.splitlines() if key in line]
        # Present, but only in comments: the file itself stores hashes.
        assert lines and all(line.lstrip().startswith("#") for line in lines)


def test_key_id_is_a_hash_prefix_not_the_key():
    caller = KeyStore.from_file(DEMO_KEYS_FILE).lookup(DEMO_KEYS["pro"])
    assert caller is not None
    assert len(caller.key_id) == 16
    assert caller.key_id == key_sha256(DEMO_KEYS["pro"])[:16]
    assert DEMO_KEYS["pro"] not in repr(caller)


def test_unknown_key_is_none():
    store = KeyStore.from_file(DEMO_KEYS_FILE)
    assert store.lookup("sk-42ai-unknown") is None
    assert store.lookup("") is None
    assert store.lookup(DEMO_KEYS["free"] + " ") is None
    # The stored hash itself is not a key.
    assert store.lookup(sha(DEMO_KEYS["free"])) is None


def test_lookup_survives_odd_characters():
    assert KeyStore.from_file(DEMO_KEYS_FILE).lookup("sk-\udcff-\u00e9\x00") is None


def test_uppercase_hex_is_accepted(tmp_path):
    path = write(tmp_path, entry().replace(sha("sk-42ai-k1"), sha("sk-42ai-k1").upper()))
    assert KeyStore.from_file(path).lookup("sk-42ai-k1") is not None


def test_bad_tier_names_the_file_and_the_entry(tmp_path):
    path = write(tmp_path, entry() + entry("sk-42ai-k2", tier="gold", label="second"))
    with pytest.raises(ValueError, match="gold") as info:
        KeyStore.from_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "entry 2" in message and "'second'" in message
    assert "free, pro, internal" in message


@pytest.mark.parametrize("field", ["sha256", "tier", "label"])
def test_missing_field_names_the_file_the_entry_and_the_field(tmp_path, field):
    text = "\n".join(line for line in entry().splitlines() if not line.startswith(field))
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=f"missing field.*{field}") as info:
        KeyStore.from_file(path)
    assert str(path) in str(info.value) and "entry 1" in str(info.value)


def test_unknown_field_is_refused(tmp_path):
    path = write(tmp_path, entry() + 'teir = "pro"\n')
    with pytest.raises(ValueError, match=r"unknown field.*teir"):
        KeyStore.from_file(path)


def test_non_string_field_is_refused(tmp_path):
    path = write(tmp_path, entry().replace('tier = "free"', "tier = 1"))
    with pytest.raises(ValueError, match="tier must be strings"):
        KeyStore.from_file(path)


@pytest.mark.parametrize("digest", ["abc", "z" * 64, "0" * 63, "0" * 65, "sk-42ai-k1"])
def test_bad_sha256_is_refused(tmp_path, digest):
    path = write(tmp_path, entry().replace(sha("sk-42ai-k1"), digest))
    with pytest.raises(ValueError, match="64 hex digits"):
        KeyStore.from_file(path)


def test_empty_label_is_refused(tmp_path):
    with pytest.raises(ValueError, match="label"):
        KeyStore.from_file(write(tmp_path, entry(label="")))


def test_duplicate_key_is_refused(tmp_path):
    path = write(tmp_path, entry(tier="free", label="a") + entry(tier="internal", label="b"))
    with pytest.raises(ValueError, match="same key as entry 1"):
        KeyStore.from_file(path)


def test_file_without_keys_is_refused(tmp_path):
    with pytest.raises(ValueError, match="keys"):
        KeyStore.from_file(write(tmp_path, "# nothing\n"))
    with pytest.raises(ValueError, match="no keys defined"):
        KeyStore.from_file(write(tmp_path, "keys = []\n"))


def test_keys_not_an_array_of_tables_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected"):
        KeyStore.from_file(write(tmp_path, 'keys = "sk-42ai-k1"\n'))
    with pytest.raises(ValueError, match="entry 1"):
        KeyStore.from_file(write(tmp_path, 'keys = ["sk-42ai-k1"]\n'))


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[[keys]\nsha256 = \n")
    with pytest.raises(ValueError, match="not valid TOML") as info:
        KeyStore.from_file(path)
    assert str(path) in str(info.value)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        KeyStore.from_file(tmp_path / "absent.toml")


def test_store_built_in_memory():
    store = KeyStore([(sha("sk-x"), "internal", "x")])
    assert store.lookup("sk-x") == Caller(sha("sk-x")[:16], "x", "internal")
    with pytest.raises(ValueError, match="<memory>"):
        KeyStore([(sha("sk-x"), "root", "x")])
