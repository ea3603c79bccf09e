"""The condition language of ``start_on``/``stop_on`` (over events) and ``while`` (over states).

Pure. ``and`` binds tighter than ``or``; parentheses group. An event term is an event name
followed by positional values (matched in order against the event's environment, so
``started db`` means ``JOB=db`` for lifecycle events) and ``KEY=GLOB`` / ``KEY!=GLOB``
checks; ``$VAR`` in a value is taken from the instance's own environment. A state term is a
service name, optionally with instance checks: ``tty(TTY=tty1)`` or ``tty(TTY=*)``.

An event condition is atomic (Upstart's rule): each term remembers the event that satisfied
it; when the whole condition becomes true it fires with the environment those events carried
and every term is reset, so the next firing needs the whole condition again from scratch.

Parse errors raise :class:`ExprError` with the 1-based column of the problem. Evaluating a
parsed condition against events and states is :mod:`corral.core.evaluate`.
"""

from __future__ import annotations

import re

from msgspec import Struct


class ExprError(ValueError):
    """A condition that does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"at column {column}: {message}")
        self.column = column


# -- the trees ---------------------------------------------------------------------------


class Check(Struct, frozen=True):
    """``KEY=GLOB`` or ``KEY!=GLOB``; ``key`` is None for a positional value."""

    key: str | None
    glob: str
    negate: bool = False


class EventTerm(Struct, frozen=True):
    name: str
    checks: tuple[Check, ...] = ()
    index: int = 0  # position among the condition's terms, for the firing progress


class StateTerm(Struct, frozen=True):
    name: str
    checks: tuple[Check, ...] = ()


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


# -- the parser ----------------------------------------------------------------------------

EVENT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:/-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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
        if token.text == ")" or token.text in KEYWORDS:
            raise ExprError(f"expected a name, got {token.text!r}", token.column)
        if not EVENT_NAME.match(token.text):
            raise ExprError(f"{token.text!r} is not a valid name", token.column)
        return self.state_term(token) if self.states else self.event_term(token)

    def event_term(self, name: _Token) -> EventTerm:
        checks = []
        while (token := self.peek()) is not None and token.text not in ("(", ")", *KEYWORDS):
            self.take()
            checks.append(self.check(token, positional=True))
        index = self.terms
        self.terms += 1
        return EventTerm(name.text, tuple(checks), index)

    def state_term(self, name: _Token) -> StateTerm:
        token = self.peek()
        if token is None or token.text != "(" or not token.glued:
            return StateTerm(name.text)
        self.take()
        checks = []
        while True:
            token = self.take()
            if token.text == ")":
                break
            for part in filter(None, token.text.split(",")):
                checks.append(self.check(_Token(part, token.column, False), positional=False))
        if not checks:
            raise ExprError("expected KEY=VALUE inside the parentheses", name.column)
        return StateTerm(name.text, tuple(checks))

    def check(self, token: _Token, positional: bool) -> Check:
        text = token.text
        match = re.match(r"^([^=!]*)(!=|=)(.*)$", text)
        if match is None:
            if not positional:
                raise ExprError(f"expected KEY=VALUE, got {text!r}", token.column)
            return Check(None, text)
        key, operator, glob = match.groups()
        if not _KEY.match(key):
            raise ExprError(f"{key!r} is not a valid variable name", token.column)
        return Check(key, glob, negate=operator == "!=")


def parse_events(text: str) -> Node:
    """A ``start_on``/``stop_on`` condition."""
    return _Parser(text, states=False).parse()


def parse_states(text: str) -> Node:
    """A ``while`` condition."""
    return _Parser(text, states=True).parse()


class Condition(Struct, frozen=True):
    """A condition as written (for messages and ``config show``) and as parsed."""

    text: str
    node: Node

    @property
    def names(self) -> list[str]:
        return names_in(self.node)


def wildcard_keys(node: Node) -> set[str]:
    """The keys a ``while`` condition binds with ``KEY=*`` anywhere in it."""
    if isinstance(node, StateTerm | EventTerm):
        return {c.key for c in node.checks if c.key is not None and c.glob == "*"}
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


def render(node: Node) -> str:
    """The condition as text that parses back to the same tree."""
    if isinstance(node, EventTerm | StateTerm):
        checks = [
            t.glob if t.key is None else f"{t.key}{'!=' if t.negate else '='}{t.glob}"
            for t in node.checks
        ]
        if isinstance(node, StateTerm):
            return f"{node.name}({','.join(checks)})" if checks else node.name
        return " ".join([node.name, *checks])
    if isinstance(node, And):
        return f"{_group(node.left, Or)} and {_group(node.right, Or | And)}"
    return f"{render(node.left)} or {_group(node.right, Or)}"


def _group(node: Node, kinds: object) -> str:
    text = render(node)
    return f"({text})" if isinstance(node, kinds) else text  # type: ignore[arg-type]
