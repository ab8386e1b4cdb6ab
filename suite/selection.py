"""Which requirements a run judges: ``--level``, ``--requirements EXPR`` and the target's profile.

``EXPR`` works like pytest's ``-k``: words joined by ``and``, ``or``, ``not`` and parentheses. A word
matches a requirement when it is

* its ID (``STREAM-003``) or an fnmatch pattern over IDs (``AUTH-00?``, ``CHAT-*``),
* its ID prefix (``AUTH`` matches every ``AUTH-NNN``),
* or its area (``streaming``, ``auth``).

Matching is case-insensitive. A test is selected when any of its requirement IDs matches.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from suite.catalogue import LEVELS, Requirement

__all__ = ["RequirementFilter", "SelectionError", "level_admits", "parse_filter"]

Predicate = Callable[[Requirement], bool]

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_KEYWORDS = {"and", "or", "not"}


class SelectionError(ValueError):
    """The ``--requirements`` expression or ``--level`` cannot be understood."""


def level_admits(selected: str, level: str) -> bool:
    """True when a requirement of ``level`` is selected by ``--level selected`` (MUST < SHOULD < MAY)."""
    try:
        return LEVELS.index(level.upper()) <= LEVELS.index(selected.upper())
    except ValueError:
        raise SelectionError(f"unknown level {selected!r} (choose must, should or may)") from None


def _word(word: str) -> Predicate:
    pattern = word.upper()

    def matches(requirement: Requirement) -> bool:
        rid = requirement.id.upper()
        return (
            fnmatch.fnmatchcase(rid, pattern)
            or rid.rsplit("-", 1)[0] == pattern
            or requirement.area.upper() == pattern
        )

    return matches


class _Parser:
    """Recursive descent: expr = term ("or" term)*; term = factor ("and" factor)*; factor = "not" factor
    | "(" expr ")" | word."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise SelectionError(f"--requirements {self.text!r}: unexpected end of expression")
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            raise SelectionError("--requirements: empty expression")
        predicate = self._expr()
        if self._peek() is not None:
            raise SelectionError(f"--requirements {self.text!r}: unexpected {self._peek()!r}")
        return predicate

    def _expr(self) -> Predicate:
        left = self._term()
        while (self._peek() or "").lower() == "or":
            self._take()
            left = _or(left, self._term())
        return left

    def _term(self) -> Predicate:
        left = self._factor()
        while (self._peek() or "").lower() == "and":
            self._take()
            left = _and(left, self._factor())
        return left

    def _factor(self) -> Predicate:
        token = self._take()
        if token.lower() == "not":
            inner = self._factor()
            return lambda r: not inner(r)
        if token == "(":
            inner = self._expr()
            if self._take() != ")":
                raise SelectionError(f"--requirements {self.text!r}: missing ')'")
            return inner
        if token == ")" or token.lower() in _KEYWORDS:
            raise SelectionError(f"--requirements {self.text!r}: unexpected {token!r}")
        return _word(token)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # only trailing whitespace is left
            break
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _or(a: Predicate, b: Predicate) -> Predicate:
    return lambda r: a(r) or b(r)


def _and(a: Predicate, b: Predicate) -> Predicate:
    return lambda r: a(r) and b(r)


@dataclass(frozen=True)
class RequirementFilter:
    """A parsed ``--requirements`` expression (``None``: everything)."""

    expression: str | None
    predicate: Predicate

    def __call__(self, requirement: Requirement) -> bool:
        return self.predicate(requirement)

    def any(self, requirements: Iterable[Requirement]) -> bool:
        return any(self.predicate(r) for r in requirements)


def parse_filter(expression: str | None) -> RequirementFilter:
    """Parse ``--requirements``; raise :class:`SelectionError` with a one-line reason."""
    if expression is None or not expression.strip():
        return RequirementFilter(None, lambda _r: True)
    # The commas people type by habit ("AUTH-001,AUTH-002") mean "or".
    return RequirementFilter(expression, _Parser(expression.replace(",", " or ")).parse())
