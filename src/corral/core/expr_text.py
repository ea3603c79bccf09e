"""A parsed condition as text again: what ``config show`` and messages print, and what the
tests parse back (``parse(render(x)) == x``). Pure."""

from __future__ import annotations

from corral.core.expr import And, EventTerm, Node, Or, StateTerm


def render(node: Node) -> str:
    """The condition as text that parses back to the same tree."""
    if isinstance(node, EventTerm | StateTerm):
        checks = [
            "|".join(c.globs)
            if c.key is None
            else f"{c.key}{'!=' if c.negate else '='}" + "|".join(c.globs)
            for c in node.checks
        ]
        if isinstance(node, EventTerm):
            return " ".join([node.name, *checks])
        term = f"{node.name}({','.join(checks)})" if checks else node.name
        if node.need is None:
            return term
        return f"all {term}" if node.need == "all" else f"{node.need} of {term}"
    if isinstance(node, And):
        return f"{_group(node.left, Or)} and {_group(node.right, Or | And)}"
    return f"{render(node.left)} or {_group(node.right, Or)}"


def _group(node: Node, kinds: object) -> str:
    text = render(node)
    return f"({text})" if isinstance(node, kinds) else text  # type: ignore[arg-type]
