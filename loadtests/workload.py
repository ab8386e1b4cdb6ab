"""Realistic work for the chat requests (no Locust import): prompt and output lengths drawn from a
distribution or prompts read from a JSONL file, and multi-turn sessions that resend the conversation.

Without ``--prompt-tokens``, ``--output-tokens``, ``--prompts-file`` and ``--turns`` every chat request
is ``--prompt`` with ``--max-tokens``, as before. Otherwise each user draws its requests from its own
``random.Random``, seeded by ``--workload-seed`` and the user's place (worker, tier, number), so a rerun
with the same seed and users sends the same prompts and lengths.

A length is in tokens, but the harness has no tokenizer: a generated prompt is that many words drawn
from common short English words (about one token each in the usual BPE vocabularies) and ends in a
request to write at least ``max_tokens`` words, so a model that follows it writes to the cap. The
server's ``usage`` says what the prompt really cost; the summary reports that, not the target. The
API has no way to force an answer's length: ``max_tokens`` is a cap, and the summary sets what came
back against what was asked.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadtests.harness_option import HarnessOption
from loadtests.workload_input import (
    DEFAULT_LOGNORMAL_MAX,
    FORMS,
    Lengths,
    Prompt,
    WorkloadError,
    lengths_arg,
    parse_lengths,
    read_prompts,
)

__all__ = [
    "FOLLOW_UP",
    "WORKLOAD_OPTIONS",
    "Conversation",
    "Turn",
    "Workload",
    "WorkloadError",
    "synthetic_prompt",
]

#: The next user message of a session whose prompt brings no follow-up of its own.
FOLLOW_UP = "Please go on."
#: Common short English words, about one token each (with their leading space) in the usual BPE
#: vocabularies: a prompt of N of them costs about N tokens without a tokenizer here.
_WORD_TEXT = """
    the of and to in is it you that he was for on are with as his they be at one have this from or had
    by word but what some we can out other were all there when up use your how said an each she which do
    their time if will way about many then them write would like so these her long make thing see him
    two has look more day could go come did number sound no most people my over know water than call
    first who may down side been now find any new work part take get place made live where after back
    little only round man year came show every good me give our under name very through just form great
    think say help low line turn cause much mean before move right boy old too same tell set three want
    air well also play small end put home read hand port large spell add even land here must big high
    such follow act why ask men change went light kind off need house picture try us again animal point
    mother world near build self earth father head stand own page should country found answer school
    grow study still learn plant cover food sun four thought let keep eye never last door between city
    tree cross since hard start might story saw far sea draw left late run while press close night real
    life few stop open seem together next white children begin got walk example ease paper often always
    music those both mark book letter until mile river car feet care second group carry took rain eat
    room friend began idea fish mountain north once base hear horse cut sure watch color face wood main
    enough plain girl usual young ready above ever red list though feel talk bird soon body dog family
    direct pose leave song measure state product black short numeral class wind question happen complete
    ship area half rock order fire south problem piece told knew pass farm top whole king size heard
    best hour better true during hundred am remember step early hold west ground interest reach fast
    five sing listen six table travel less morning
"""
_WORDS = tuple(_WORD_TEXT.split())


def _turns_arg(word: str) -> int:
    value = int(word)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--turns must be 1 or more, not {word!r}")
    return value


def synthetic_prompt(rng: random.Random, tokens: int, max_tokens: int) -> str:
    """About ``tokens`` tokens: words drawn from ``_WORDS``, then the request to write ``max_tokens``
    words (counted in), so a model that follows it answers to the cap."""
    ask = f"Write at least {max_tokens} words."
    return " ".join(rng.choices(_WORDS, k=max(1, tokens - len(ask.split())))) + " " + ask


# ---------------------------------------------------------------------------------------- sessions
@dataclass(frozen=True)
class Workload:
    """What the chat requests ask: the settings of the options above, ready to draw from."""

    prompt: str
    max_tokens: int
    prompt_tokens: Lengths | None = None
    output_tokens: Lengths | None = None
    prompts: tuple[Prompt, ...] = ()
    turns: int = 1
    seed: int = 0

    @classmethod
    def from_options(cls, get: Callable[[str], Any]) -> Workload:
        """From the parsed options (``get`` reads one by name); reads the prompts file."""
        prompt_spec, output_spec, path = (
            get(n) or "" for n in ("prompt_tokens", "output_tokens", "prompts_file")
        )
        if prompt_spec and path:
            raise WorkloadError(
                "--prompt-tokens and --prompts-file exclude each other: the file sets the prompts"
            )
        return cls(
            prompt=str(get("prompt")),
            max_tokens=int(get("max_tokens")),
            prompt_tokens=parse_lengths(prompt_spec) if prompt_spec else None,
            output_tokens=parse_lengths(output_spec) if output_spec else None,
            prompts=read_prompts(path) if path else (),
            turns=max(1, int(get("turns"))),
            seed=int(get("workload_seed")),
        )

    def conversation(self, stream: str, multi_turn: bool = True) -> Conversation:
        """The sessions of one user; ``stream`` names the user, so each draws its own sequence."""
        return Conversation(self, random.Random(f"{self.seed}/{stream}"), self.turns if multi_turn else 1)


@dataclass
class Turn:
    """One chat request of a session: ``number`` 1 opens it."""

    number: int
    messages: list[dict[str, str]]
    max_tokens: int


class Conversation:
    """One user's sessions. ``next_turn`` is the request to send; ``answered`` (with the reply's text)
    or ``refused`` (429/503: the same request is sent again) says what became of it, and a turn with
    neither failed, which ends its session. Turn k resends turns 1..k-1 and their replies in order.

    A single-turn conversation keeps no state: the open-loop user sends from many greenlets at once.
    """

    def __init__(self, workload: Workload, rng: random.Random, turns: int) -> None:
        self.workload, self.rng, self.turns = workload, rng, turns
        self.model: str | None = None
        self._prompt: Prompt | None = None
        self._history: list[dict[str, str]] = []
        self._answered = 0  # turns of the session under way answered so far
        self._sent: Turn | None = None
        self._retry = False

    @property
    def wants_reply(self) -> bool:
        return self.turns > 1

    def _settle(self) -> None:
        if self._sent is not None and not self._retry:  # neither answered nor refused: it failed
            self._end_session()

    def _end_session(self) -> None:
        self._history, self._answered, self._sent = [], 0, None

    def keep_model(self, model: str) -> str:
        """The model of the session under way, else ``model``, which a new session then keeps."""
        self._settle()
        if self.turns > 1 and self.model is not None and (self._history or self._sent is not None):
            return self.model
        self.model = model
        return model

    def next_turn(self) -> Turn:
        if self.turns == 1:
            return self._opening()[0]
        self._settle()
        if self._sent is None:
            if self._history:
                self._sent = self._follow_up(self._answered + 1)
            else:
                self._sent, self._prompt = self._opening()
        self._retry = False
        return self._sent

    def single(self) -> list[dict[str, str]]:
        """The messages of a fresh one-off request, outside the session (a batch task)."""
        return self._opening()[0].messages

    def refused(self, turn: Turn) -> None:
        if turn is self._sent:
            self._retry = True

    def answered(self, turn: Turn, reply: str) -> None:
        if turn is not self._sent:
            return
        if turn.number >= self.turns:
            self._end_session()
            return
        self._sent, self._answered = None, turn.number
        self._history = [*turn.messages, {"role": "assistant", "content": reply}]

    def _max_tokens(self, prompt: Prompt | None) -> int:
        if prompt is not None and prompt.max_tokens is not None:
            return prompt.max_tokens
        w = self.workload
        return w.output_tokens.draw(self.rng) if w.output_tokens is not None else w.max_tokens

    def _user_text(self, max_tokens: int) -> str:
        lengths = self.workload.prompt_tokens
        return (
            self.workload.prompt
            if lengths is None
            else synthetic_prompt(self.rng, lengths.draw(self.rng), max_tokens)
        )

    def _opening(self) -> tuple[Turn, Prompt | None]:
        prompts = self.workload.prompts
        if prompts:
            prompt = self.rng.choice(prompts)
            messages = [{"role": role, "content": content} for role, content in prompt.messages]
            return Turn(1, messages, self._max_tokens(prompt)), prompt
        max_tokens = self._max_tokens(None)
        return Turn(1, [{"role": "user", "content": self._user_text(max_tokens)}], max_tokens), None

    def _follow_up(self, number: int) -> Turn:
        max_tokens = self._max_tokens(self._prompt)
        followups = self._prompt.followups if self._prompt is not None else ()
        if number - 2 < len(followups):
            text = followups[number - 2]
        elif self._prompt is None and self.workload.prompt_tokens is not None:
            text = self._user_text(max_tokens)
        else:
            text = FOLLOW_UP
        return Turn(number, [*self._history, {"role": "user", "content": text}], max_tokens)


WORKLOAD_OPTIONS: tuple[HarnessOption, ...] = (
    HarnessOption(
        "prompt_tokens",
        parse=lengths_arg,
        help=f"prompt length of each chat request in tokens, drawn from {FORMS} (lognormal max "
        f"default {DEFAULT_LOGNORMAL_MAX}): generated English words, about one token each (approximate: "
        "the summary reports the server's usage), asking for max_tokens words; replaces --prompt for "
        "chat, stream and batch",
    ),
    HarnessOption(
        "output_tokens",
        parse=lengths_arg,
        help="max_tokens of each chat request, drawn like --prompt-tokens (default: --max-tokens); a cap, "
        "not a length: the model may stop earlier, and the summary shows asked against received",
    ),
    HarnessOption(
        "prompts_file",
        help='JSONL, one request a line: {"prompt": "..."} or {"messages": [...]}, optional "max_tokens" '
        'and "followups" (next user messages of a session); each session draws a line',
    ),
    HarnessOption(
        "turns",
        parse=_turns_arg,
        default=1,
        help="requests per session of a closed-loop user (default 1): each next one resends the "
        "conversation with the replies received and a next user message; open-loop arrivals are single-turn",
    ),
    HarnessOption(
        "workload_seed",
        parse=int,
        default=0,
        help="seed of the drawn prompts, lengths and file lines (default 0): the same seed and users send "
        "the same requests",
    ),
)
