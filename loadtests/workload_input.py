"""What the workload options say, checked (no Locust import): length specs (``fixed:N``,
``uniform:MIN,MAX``, ``lognormal:MEDIAN,SIGMA[,max=N]``) and prompts files (JSONL). A bad one is a
``WorkloadError`` with a one-line message that names the spec or the file's line."""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LOGNORMAL_MAX",
    "FORMS",
    "Lengths",
    "Prompt",
    "WorkloadError",
    "lengths_arg",
    "parse_lengths",
    "read_prompts",
]

#: A lognormal draw is clipped to this unless its spec says ``max=N``: its tail is unbounded, and a
#: request past the server's context window is refused (HTTP 400), not measured.
DEFAULT_LOGNORMAL_MAX = 8192
FORMS = "fixed:N, uniform:MIN,MAX or lognormal:MEDIAN,SIGMA[,max=N]"


class WorkloadError(ValueError):
    """A length spec or a prompts file the harness cannot use; the message is one line."""


@dataclass(frozen=True)
class Lengths:
    """Token counts drawn from one distribution; every draw is a whole number of at least 1."""

    kind: str  # fixed | uniform | lognormal
    a: float  # fixed: N; uniform: MIN; lognormal: the median
    b: float = 0.0  # uniform: MAX; lognormal: sigma of the underlying normal
    high: int = DEFAULT_LOGNORMAL_MAX  # lognormal only: the largest draw

    def draw(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return int(self.a)
        if self.kind == "uniform":
            return rng.randint(int(self.a), int(self.b))
        return min(self.high, max(1, round(rng.lognormvariate(math.log(self.a), self.b))))


def _number(spec: str, name: str, word: str, whole: bool, least: float) -> float:
    try:
        value = int(word) if whole else float(word)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < least:
        what = "a whole number" if whole else "a number"
        raise WorkloadError(
            f"length spec {spec!r}: {name} must be {what} of at least {least:g}, not {word!r}"
        )
    return value


def parse_lengths(spec: str) -> Lengths:
    """``fixed:N``, ``uniform:MIN,MAX`` (both included) or ``lognormal:MEDIAN,SIGMA[,max=N]``."""
    kind, colon, rest = spec.strip().partition(":")
    names = {"fixed": ("N",), "uniform": ("MIN", "MAX"), "lognormal": ("MEDIAN", "SIGMA")}.get(kind)
    if not colon or names is None:
        raise WorkloadError(f"length spec {spec!r}: expected {FORMS}")
    words = [w.strip() for w in rest.split(",")]
    high = float(DEFAULT_LOGNORMAL_MAX)
    if words[-1].startswith("max="):
        if kind != "lognormal":
            raise WorkloadError(f"length spec {spec!r}: max= bounds a lognormal spec only")
        high = _number(spec, "max", words.pop()[4:], True, 1)
    if len(words) != len(names):
        raise WorkloadError(f"length spec {spec!r}: {kind} takes {','.join(names)}")
    if kind == "fixed":
        return Lengths(kind, _number(spec, "N", words[0], True, 1))
    if kind == "uniform":
        low, top = (_number(spec, n, w, True, 1) for n, w in zip(names, words, strict=True))
        if low > top:
            raise WorkloadError(f"length spec {spec!r}: MIN {low:g} is above MAX {top:g}")
        return Lengths(kind, low, top)
    median = _number(spec, "MEDIAN", words[0], False, 1)
    if high < median:
        raise WorkloadError(f"length spec {spec!r}: max={high:g} is below the median {median:g}")
    return Lengths(kind, median, _number(spec, "SIGMA", words[1], False, 0), int(high))


def lengths_arg(word: str) -> str:
    """``--prompt-tokens`` / ``--output-tokens``: checked here (a usage error), kept as the word, which
    is what reaches distributed workers with the spawn message; empty is off."""
    if not word.strip():
        return ""
    try:
        parse_lengths(word)
    except WorkloadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return word.strip()


@dataclass(frozen=True)
class Prompt:
    """One line of a prompts file: the opening messages (role, content), their max_tokens, and the
    next user messages of a multi-turn session."""

    messages: tuple[tuple[str, str], ...]
    max_tokens: int | None = None
    followups: tuple[str, ...] = ()


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _prompt(data: Any, where: str) -> Prompt:
    if not isinstance(data, dict) or ("prompt" in data) == ("messages" in data):
        raise WorkloadError(f'{where}: expected an object with "prompt" or "messages" (one of them)')
    unknown = sorted(set(data) - {"prompt", "messages", "max_tokens", "followups"})
    if unknown:
        raise WorkloadError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if "prompt" in data:
        if not isinstance(data["prompt"], str) or not data["prompt"]:
            raise WorkloadError(f'{where}: "prompt" must be a non-empty string')
        messages: tuple[tuple[str, str], ...] = (("user", data["prompt"]),)
    else:
        raw = data["messages"]
        if not isinstance(raw, list) or not raw or not all(_message(m) for m in raw):
            raise WorkloadError(
                f'{where}: "messages" must be a non-empty list of {{"role": string, "content": string}}'
            )
        messages = tuple((m["role"], m["content"]) for m in raw)
    max_tokens = data.get("max_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise WorkloadError(f'{where}: "max_tokens" must be a whole number of at least 1')
    followups = data.get("followups", [])
    if not _strings(followups):
        raise WorkloadError(f'{where}: "followups" must be a list of strings')
    return Prompt(messages, max_tokens, tuple(followups))


def _message(m: Any) -> bool:
    return isinstance(m, dict) and set(m) == {"role", "content"} and _strings([m["role"], m["content"]])


def read_prompts(path: str | Path) -> tuple[Prompt, ...]:
    """The prompts of a JSONL file (blank lines skipped); WorkloadError names the first bad line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"cannot read the prompts file {path}: {exc}") from exc
    prompts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise WorkloadError(f"{path} line {number}: not JSON ({exc})") from exc
        prompts.append(_prompt(data, f"{path} line {number}"))
    if not prompts:
        raise WorkloadError(f"the prompts file {path} holds no prompts")
    return tuple(prompts)
