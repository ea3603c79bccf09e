"""The condition language of ``start_on``/``stop_on`` (over events) and ``while`` (over states).

Pure. ``and`` binds tighter than ``or``; parentheses group. An event term is an event name
followed by positional values (matched in order against the event's environment, so
``started db`` means ``JOB=db`` for lifecycle events) and ``KEY=GLOB`` / ``KEY!=GLOB``
checks; ``$VAR`` in a value is taken from the instance's own environment. A state term is a
service name, optionally with instance checks: ``tty(TTY=tty1)`` or ``tty(TTY=*)``.

An event condition is atomic (Upstart's rule): each term remembers the event that satisfied
it; when the whole condition becomes true it fires with the environment those events carried
and every term is reset, so the next firing needs the whole condition again from scratch.

Parse errors raise :class:`ExprError` with the 1-based column of the problem.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence

from msgspec import Struct, field

from corral.core.expand import expand


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


# -- matching --------------------------------------------------------------------------------


def _value(glob: str, variables: Mapping[str, str]) -> str:
    """``$VAR`` from the instance's environment; an unset one matches nothing."""
    if "$" not in glob:
        return glob
    try:
        return expand(glob, variables)
    except KeyError:
        return "\0unset\0"


def checks_match(
    checks: Sequence[Check], env: Sequence[tuple[str, str]], variables: Mapping[str, str]
) -> bool:
    """Positional values match the environment's values in order; ``KEY!=GLOB`` holds
    when the key is missing (the value is certainly not GLOB)."""
    named = dict(env)
    position = 0
    for check in checks:
        pattern = _value(check.glob, variables)
        if check.key is None:
            if position >= len(env) or not fnmatch.fnmatchcase(env[position][1], pattern):
                return False
            position += 1
            continue
        value = named.get(check.key)
        hit = value is not None and fnmatch.fnmatchcase(value, pattern)
        if hit == check.negate:
            return False
    return True


class Event(Struct, frozen=True):
    name: str
    env: tuple[tuple[str, str], ...] = ()


class Progress(Struct, frozen=True):
    """Which event terms of an atomic condition are satisfied, and by which event."""

    matched: Mapping[int, Event] = field(default_factory=dict)


def _true(node: Node, matched: Mapping[int, Event]) -> bool:
    if isinstance(node, EventTerm):
        return node.index in matched
    if isinstance(node, StateTerm):
        raise TypeError("a state term in an event condition")
    if isinstance(node, And):
        return _true(node.left, matched) and _true(node.right, matched)
    return _true(node.left, matched) or _true(node.right, matched)


def _terms(node: Node) -> list[EventTerm]:
    if isinstance(node, EventTerm):
        return [node]
    if isinstance(node, StateTerm):
        return []
    return _terms(node.left) + _terms(node.right)


def advance(
    node: Node, progress: Progress, event: Event, variables: Mapping[str, str] = {}
) -> tuple[Progress, dict[str, str] | None]:
    """Feed one event to an atomic condition. Returns the new progress and, if the
    condition fired, the environment of the events that made it true (in term order; a
    later term's value wins); firing resets the progress."""
    matched = dict(progress.matched)
    for term in _terms(node):
        if term.name == event.name and checks_match(term.checks, event.env, variables):
            matched[term.index] = event
    if not _true(node, matched):
        return Progress(matched), None
    env: dict[str, str] = {}
    for term in _terms(node):
        if term.index in matched and _true_through(node, term.index, matched):
            env.update(matched[term.index].env)
    return Progress(), env


def _true_through(node: Node, index: int, matched: Mapping[int, Event]) -> bool:
    """Whether the term takes part in making the condition true (a false ``or`` branch's
    stale match does not contribute its environment)."""
    if isinstance(node, EventTerm):
        return node.index == index
    if isinstance(node, StateTerm):
        return False
    if isinstance(node, And):
        return _true_through(node.left, index, matched) or _true_through(node.right, index, matched)
    left = _true(node.left, matched) and _true_through(node.left, index, matched)
    return left or (_true(node.right, matched) and _true_through(node.right, index, matched))


# -- states --------------------------------------------------------------------------------

#: A holding instance of a state or service: its key and its environment.
Holding = tuple[str, Mapping[str, str]]
#: The holding instances of a name (running ones, and process-less states that hold).
Lookup = Callable[[str], Sequence[Holding]]


def _term_bindings(term: StateTerm, lookup: Lookup) -> list[dict[str, str]]:
    """The ways one state term holds: one binding per holding instance that passes its
    checks, binding each ``KEY=*`` wildcard to that instance's value."""
    bindings = []
    for _key, env in lookup(term.name):
        items = tuple(env.items())
        if not checks_match(term.checks, items, {}):
            continue
        bindings.append(
            {t.key: env[t.key] for t in term.checks if t.key and t.glob == "*" and t.key in env}
        )
    return bindings


def bindings(node: Node, lookup: Lookup) -> list[dict[str, str]]:
    """Every distinct way a ``while`` condition holds, as the wildcard values it binds.

    ``[{}]`` means it holds with nothing bound (one plain instance); ``[]`` means it does
    not hold. ``and`` joins compatible bindings (all of), ``or`` unites them (any of), so
    ``getty`` with ``while = "tty(TTY=*)"`` runs once per holding tty instance.
    """
    if isinstance(node, StateTerm):
        return _unique(_term_bindings(node, lookup))
    if isinstance(node, EventTerm):
        raise TypeError("an event term in a state condition")
    left, right = bindings(node.left, lookup), bindings(node.right, lookup)
    if isinstance(node, Or):
        return _unique(left + right)
    joined = []
    for a in left:
        for b in right:
            if all(a[k] == b[k] for k in a.keys() & b.keys()):
                joined.append({**a, **b})
    return _unique(joined)


def _unique(items: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def holds(node: Node, lookup: Lookup) -> bool:
    return bool(bindings(node, lookup))


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
