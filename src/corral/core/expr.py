"""The condition language of ``start_on``/``stop_on`` (over events) and ``while`` (over states).

Pure. ``and`` binds tighter than ``or``; parentheses group. An event term is an event name
followed by positional values (matched in order against the event's environment, so
``started db`` means ``JOB=db`` for lifecycle events) and ``KEY=GLOB`` / ``KEY!=GLOB``
checks; ``$VAR`` in a value is taken from the instance's own environment. A state term is a
service name, optionally with instance checks: ``tty(TTY=tty1)`` or ``tty(TTY=*)``, whose
values may be lists (``net(IF=a|b|c)``: any of them; ``IF!=a|b``: none of them). The seed's
counting operators prefix one state term: ``all net(IF=a|b|c)``, ``2 of net(IF=a|b|c)``.

An event condition is atomic (Upstart's rule): each term remembers the event that satisfied
it; when the whole condition becomes true it fires with the environment those events carried
and every term is reset, so the next firing needs the whole condition again from scratch.

Parse errors raise :class:`ExprError` with the 1-based column of the problem. Evaluating a
parsed condition against events and states is :mod:`corral.core.evaluate`; every form is
shown in ``docs/conditions.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from msgspec import Struct


class ExprError(ValueError):
    """A condition that does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"at column {column}: {message}")
        self.column = column


# -- the trees ---------------------------------------------------------------------------


#: A value with a glob in it (``*``, ``?``, ``[``): it matches more than one value. A
#: ``$VAR`` value is taken literally (``evaluate.py``), so it is no pattern.
_PATTERN = re.compile(r"^[^$].*[*?\[]|^[*?\[]")


class Check(Struct, frozen=True):
    """``KEY=GLOB`` or ``KEY!=GLOB``; ``key`` is None for a positional value. ``globs`` holds
    one pattern, or in a state term each value of a list ``KEY=a|b|c`` (the instance's value
    is any of them; with ``!=``, none of them)."""

    key: str | None
    globs: tuple[str, ...]
    negate: bool = False

    @property
    def binds(self) -> bool:
        """``KEY=*``, any other pattern (``FILE=/in/*.csv``) and ``KEY=a|b|c`` bind KEY: a
        ``while`` job whose ``instance`` uses it gets one instance per holding value."""
        if self.key is None or self.negate:
            return False
        return self.listed or any(_PATTERN.search(glob) for glob in self.globs)

    @property
    def listed(self) -> bool:
        return len(self.globs) > 1


class EventTerm(Struct, frozen=True):
    name: str
    checks: tuple[Check, ...] = ()
    index: int = 0  # position among the condition's terms, for the firing progress


#: ``all NAME(KEY=a|b|c)``: every listed value holds; ``K of ...``: at least K of them.
Need = int | Literal["all"]


class StateTerm(Struct, frozen=True):
    """``NAME`` or ``NAME(KEY=VALUE,...)``; with ``need``, a counting term: it counts the
    values of its one ``KEY=a|b|c`` list that hold, and binds nothing."""

    name: str
    checks: tuple[Check, ...] = ()
    need: Need | None = None

    @property
    def counted(self) -> Check | None:
        """The list a counting term counts (the parser makes sure there is exactly one)."""
        if self.need is None:
            return None
        return next(c for c in self.checks if c.listed and not c.negate)


class And(Struct, frozen=True):
    left: Node
    right: Node


class Or(Struct, frozen=True):
    left: Node
    right: Node


Node = EventTerm | StateTerm | And | Or


# -- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<word>[^\s()]+))")


class _Token(Struct, frozen=True):
    text: str
    column: int
    glued: bool  # no space before it (``name(`` in a state term)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise ExprError(f"unexpected {text[position:].strip()[0]!r}", position + 1)
            return tokens
        start = match.start("paren") if match.group("paren") else match.start("word")
        glued = start == position and position > 0
        tokens.append(_Token(match.group("paren") or match.group("word"), start + 1, glued))
        position = match.end()


def _parts(token: _Token) -> Iterator[_Token]:
    """The comma-separated pieces of a word inside a state term, each with its own column."""
    for match in re.finditer(r"[^,]+", token.text):
        yield _Token(match.group(), token.column + match.start(), False)


# -- the parser ----------------------------------------------------------------------------

EVENT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:/-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHECK = re.compile(r"^([^=!]*)(!=|=)(.*)$")
_GLOB = re.compile(r"[*?\[]")
_COUNT = re.compile(r"^[0-9]+$")
KEYWORDS = frozenset({"and", "or"})


class _Parser:
    def __init__(self, text: str, states: bool) -> None:
        self.text = text
        self.states = states
        self.tokens = _tokens(text)
        self.position = 0
        self.terms = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def column(self) -> int:
        token = self.peek()
        return token.column if token else len(self.text) + 1

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ExprError("unexpected end of the condition", len(self.text) + 1)
        self.position += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise ExprError("empty condition", 1)
        node = self.parse_or()
        token = self.peek()
        if token is not None:
            raise ExprError(f"unexpected {token.text!r}", token.column)
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while (token := self.peek()) is not None and token.text == "or":
            self.take()
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_primary()
        while (token := self.peek()) is not None and token.text == "and":
            self.take()
            node = And(node, self.parse_primary())
        return node

    def parse_primary(self) -> Node:
        token = self.take()
        if token.text == "(":
            node = self.parse_or()
            closing = self.peek()
            if closing is None or closing.text != ")":
                raise ExprError("missing ')'", self.column())
            self.take()
            return node
        if self.states and (prefix := self.counting_prefix(token)) is not None:
            return self.counted_term(token, prefix)
        self.expect_name(token)
        return self.state_term(token) if self.states else self.event_term(token)

    def expect_name(self, token: _Token) -> None:
        if token.text == ")" or token.text in KEYWORDS:
            raise ExprError(f"expected a name, got {token.text!r}", token.column)
        if not EVENT_NAME.match(token.text):
            raise ExprError(f"{token.text!r} is not a valid name", token.column)

    def event_term(self, name: _Token) -> EventTerm:
        checks = []
        while (token := self.peek()) is not None and token.text not in ("(", ")", *KEYWORDS):
            self.take()
            checks.append(self.event_check(token))
        index = self.terms
        self.terms += 1
        return EventTerm(name.text, tuple(checks), index)

    def event_check(self, token: _Token) -> Check:
        """A positional value or ``KEY=GLOB``; ``|`` is an ordinary character here."""
        match = _CHECK.match(token.text)
        if match is None:
            return Check(None, (token.text,))
        key, operator, glob = match.groups()
        _check_key(key, token.column)
        return Check(key, (glob,), negate=operator == "!=")

    # -- state terms -----------------------------------------------------------------------

    def state_term(self, name: _Token) -> StateTerm:
        checks = self.state_checks(name)
        return StateTerm(name.text, tuple(check for check, _ in checks))

    def state_checks(self, name: _Token) -> list[tuple[Check, int]]:
        """The checks in ``NAME(...)``, each with its column (none without parentheses)."""
        token = self.peek()
        if token is None or token.text != "(" or not token.glued:
            return []
        self.take()
        checks = []
        while True:
            token = self.take()
            if token.text == ")":
                break
            for part in _parts(token):
                checks.append((_state_check(part), part.column))
        if not checks:
            raise ExprError("expected KEY=VALUE inside the parentheses", name.column)
        return checks

    def counting_prefix(self, token: _Token) -> Need | None:
        """``all`` or ``K of`` before a state term; None where the word is a plain name (a
        service may be called ``all``, or ``2``)."""
        after = self.peek()
        if after is None or after.glued:
            return None
        if token.text == "all" and after.text not in KEYWORDS and after.text != ")":
            return "all"
        if _COUNT.match(token.text) and after.text == "of":
            self.take()
            return int(token.text)
        return None

    def counted_term(self, prefix: _Token, need: Need) -> StateTerm:
        written = "all" if need == "all" else f"{need} of"
        name = self.take()
        if name.text == "(":
            raise ExprError(f"{written!r} applies to one state term, such as "
                            f"{written} net(IF=a|b|c)", name.column)  # fmt: skip
        self.expect_name(name)
        checks = self.state_checks(name)
        for check, column in checks:
            _countable(check, column, written)
        lists = [(c, column) for c, column in checks if c.listed and not c.negate]
        if not lists:
            raise ExprError(f"{written!r} counts the values of a list, such as "
                            f"{written} {name.text}(KEY=a|b|c)", name.column)  # fmt: skip
        if len(lists) > 1:
            raise ExprError(f"{written!r} counts one list; {lists[1][0].key}= is a second",
                            lists[1][1])  # fmt: skip
        values = len(lists[0][0].globs)
        if need == 0:
            raise ExprError("'0 of' always holds: leave the term out", prefix.column)
        if need != "all" and need > values:
            raise ExprError(f"{need} of a list of {values} values can never hold",
                            prefix.column)  # fmt: skip
        return StateTerm(name.text, tuple(check for check, _ in checks), need)


def _check_key(key: str, column: int) -> None:
    if not _KEY.match(key):
        raise ExprError(f"{key!r} is not a valid variable name", column)


def _state_check(part: _Token) -> Check:
    """``KEY=VALUE``, ``KEY!=VALUE``, where VALUE may be a list ``a|b|c``."""
    match = _CHECK.match(part.text)
    if match is None:
        raise ExprError(f"expected KEY=VALUE, got {part.text!r}", part.column)
    key, operator, value = match.groups()
    _check_key(key, part.column)
    globs = tuple(value.split("|"))
    if len(globs) > 1:
        column = part.column + match.start(3)
        for index, glob in enumerate(globs):
            if not glob:
                raise ExprError(f"an empty value in the list {value!r}", column)
            if glob in globs[:index]:
                raise ExprError(f"{glob!r} is listed twice in {value!r}", column)
            column += len(glob) + 1
    return Check(key, globs, negate=operator == "!=")


def _countable(check: Check, column: int, written: str) -> None:
    """Inside ``all``/``K of``: the counted values name one instance each, and nothing binds."""
    if check.globs == ("*",) and not check.negate:
        raise ExprError(f"{check.key}=*: {written!r} counts the values of a list, such as "
                        f"{check.key}=a|b|c, and binds nothing", column)  # fmt: skip
    if check.listed and not check.negate:
        for value in check.globs:
            if _GLOB.search(value):
                raise ExprError(f"{value!r}: each value {written!r} counts names one "
                                f"instance; write them out, not as a pattern", column)  # fmt: skip


def parse_events(text: str) -> Node:
    """A ``start_on``/``stop_on`` condition."""
    return _parsed(text, states=False)


def parse_states(text: str) -> Node:
    """A ``while`` condition."""
    return _parsed(text, states=True)


def _parsed(text: str, states: bool) -> Node:
    """The parser recurses once per parenthesis: past Python's limit, an error like any."""
    try:
        return _Parser(text, states=states).parse()
    except RecursionError:
        raise ExprError("parentheses nested too deeply", 1) from None


class Condition(Struct, frozen=True):
    """A condition as written (for messages and ``config show``) and as parsed."""

    text: str
    node: Node

    @property
    def names(self) -> list[str]:
        return names_in(self.node)


def wildcard_keys(node: Node) -> set[str]:
    """The keys a ``while`` condition binds (``KEY=*``, ``KEY=a|b|c``) anywhere in it."""
    if isinstance(node, StateTerm):
        if node.need is not None:
            return set()
        return {c.key for c in node.checks if c.key is not None and c.binds}
    if isinstance(node, EventTerm):
        return {c.key for c in node.checks if c.key is not None and c.globs == ("*",)}
    return wildcard_keys(node.left) | wildcard_keys(node.right)


def names_in(node: Node) -> list[str]:
    """Every event or service name the condition mentions, in order, once each."""
    found: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, EventTerm | StateTerm):
            if n.name not in found:
                found.append(n.name)
        else:
            walk(n.left)
            walk(n.right)

    walk(node)
    return found
