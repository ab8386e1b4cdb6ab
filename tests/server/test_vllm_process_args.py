"""VllmProcess builds the command line vLLM needs (no vLLM started here)."""

from __future__ import annotations

import pytest

from reference_server.vllm_process import VllmProcess


def _argv(tmp_path, names):
    proc = VllmProcess("/models/chat", names, cache_root=tmp_path, log_file=tmp_path / "log")
    return proc, proc.command(8000)


def test_every_served_name_follows_one_flag(tmp_path):
    # vLLM's argparse keeps only the last --served-model-name, so the names must share one flag.
    proc, argv = _argv(tmp_path, ("42-think", "42-logic", "42-general"))
    assert argv.count("--served-model-name") == 1
    at = argv.index("--served-model-name")
    assert argv[at + 1:at + 4] == ["42-think", "42-logic", "42-general"]
    assert proc.served_model_name == "42-think"  # the name vLLM echoes


def test_a_single_name_is_accepted_as_a_string(tmp_path):
    proc, argv = _argv(tmp_path, "42-embed")
    assert proc.served_names == ("42-embed",)
    assert argv[argv.index("--served-model-name") + 1] == "42-embed"


def test_no_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        _argv(tmp_path, ())


def test_intel_openmp_does_not_spin_between_steps(tmp_path, monkeypatch):
    monkeypatch.delenv("KMP_BLOCKTIME", raising=False)
    proc, _ = _argv(tmp_path, "42-embed")
    env = proc.environment(tmp_path / "tmp")
    if "libiomp5" not in env.get("LD_PRELOAD", ""):
        pytest.skip("no Intel OpenMP in this environment (the vllm extra is not installed)")
    assert env["KMP_BLOCKTIME"] == "0"
    monkeypatch.setenv("KMP_BLOCKTIME", "200")  # the caller's choice wins
    assert proc.environment(tmp_path / "tmp")["KMP_BLOCKTIME"] == "200"
